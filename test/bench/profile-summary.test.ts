// The profile summarizer on a real .cpuprofile: `node --cpu-prof` runs a tiny script that
// spends its time in one named function, and the summary must say so.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { areaOf, readProfile, renderSummary, summarizeProfiles } from '../../bench/profile-summary.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-profile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
function burnCpuForTheProfile(ms) {
  const until = Date.now() + ms;
  let x = 0;
  while (Date.now() < until) for (let i = 0; i < 1000; i++) x += Math.sqrt(i);
  return x;
}
burnCpuForTheProfile(400);
`;

function profileOfScript(): string {
  const script = join(dir, 'burn.js');
  writeFileSync(script, SCRIPT);
  execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'out')}`, script]);
  const files = readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.cpuprofile'));
  expect(files).toHaveLength(1);
  return join(dir, 'out', files[0]!);
}

describe('profile summary', () => {
  it('puts the function that burned the CPU first, with its location and self time', () => {
    const file = profileOfScript();
    const s = summarizeProfiles([readProfile(file)]);
    const top = s.functions[0]!;
    expect(top.name).toBe('burnCpuForTheProfile');
    expect(top.location).toMatch(/burn\.js:2$/);
    expect(top.selfMs).toBeGreaterThan(250);
    expect(top.selfMs).toBeLessThanOrEqual(s.totalMs);
    // Self times partition the sampled time.
    const sum = s.functions.reduce((n, f) => n + f.selfMs, 0) + s.idleMs;
    expect(sum).toBeCloseTo(s.totalMs, 3);
    expect(s.areas.reduce((n, a) => n + a.selfMs, 0)).toBeCloseTo(sum - s.idleMs, 3);

    const text = renderSummary(s, 5);
    expect(text).toMatch(/\| 1 \| burnCpuForTheProfile \| .*burn\.js:2 \| other \| \d+\.\d \| \d+\.\d% \|/);
    expect(text.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toHaveLength(5);
  });

  it('sums several profiles', () => {
    const file = readdirSync(join(dir, 'out')).map((f) => join(dir, 'out', f))[0]!;
    const one = summarizeProfiles([readProfile(file)]);
    const two = summarizeProfiles([readProfile(file), readProfile(file)]);
    expect(two.files).toBe(2);
    expect(two.totalMs).toBeCloseTo(2 * one.totalMs, 3);
    expect(two.functions[0]!.selfMs).toBeCloseTo(2 * one.functions[0]!.selfMs, 3);
  });

  it('rolls functions up by package and Sluice source area', () => {
    const at = (url: string, functionName = 'f') => areaOf({ url, functionName, lineNumber: 0 });
    expect(at('file:///app/node_modules/undici/lib/dispatcher/client-h1.js')).toBe('undici');
    expect(at('file:///app/node_modules/http-cache-semantics/index.js')).toBe('http-cache-semantics');
    expect(at('file:///app/node_modules/pino/lib/proto.js')).toBe('pino');
    expect(at('file:///app/node_modules/sonic-boom/index.js')).toBe('pino');
    expect(at('file:///app/node_modules/prom-client/lib/histogram.js')).toBe('prom-client');
    expect(at('file:///app/node_modules/@opentelemetry/sdk-trace-base/build/src/Span.js')).toBe('@opentelemetry');
    expect(at('node:internal/http/server')).toBe('node:internal');
    expect(at('', 'writeUtf8String')).toBe('node:internal');
    expect(at('', '(garbage collector)')).toBe('(garbage collector)');
    expect(at('file:///work/sluice/dist/src/pipeline/phases/lookup-cache.js')).toBe('sluice src/pipeline');
    expect(at('file:///work/sluice/dist/src/cache/store.js')).toBe('sluice src/cache');
    expect(at('file:///work/sluice/dist/src/app.js')).toBe('sluice src');
  });
});
