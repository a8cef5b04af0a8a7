// `npm test` obtains the dashboard test's browser itself: the script it runs first either
// finds Chromium, installs it (as root), or fails with the one command to run — the
// browser test is never skipped silently.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = resolve(ROOT, 'scripts/install-browser.sh');

/**
 * A copy of the script that `nobody` can read: a checkout may sit in a directory only its
 * owner can enter (a `mktemp -d` clone is 0700).
 */
function readableCopy(): { script: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-install-browser-'));
  chmodSync(dir, 0o755);
  const script = join(dir, 'install-browser.sh');
  copyFileSync(SCRIPT, script);
  chmodSync(script, 0o755);
  return { script, dir };
}

/** Runs the script as an unprivileged user: `nobody` when the suite itself runs as root. */
async function runUnprivileged(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const asRoot = process.getuid?.() === 0;
  const { script, dir } = asRoot ? readableCopy() : { script: SCRIPT, dir: ROOT };
  const child = spawn('sh', [script], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

describe('scripts/install-browser.sh', () => {
  it('is run by npm test before the suite', () => {
    const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.test).toMatch(/^npm run build && sh scripts\/install-browser\.sh && sh scripts\/install-gunicorn\.sh && vitest run$/);
  });

  it('does nothing when the browser is there', async () => {
    const found = await runUnprivileged({ SLUICE_CHROMIUM: '/bin/sh' });
    expect(found).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('without root and without a browser, fails with one line saying exactly what to run', async () => {
    const missing = await runUnprivileged({ SLUICE_CHROMIUM: '/nonexistent/chromium' });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain("run 'sudo sh scripts/install-browser.sh'");
    expect(missing.stderr).toContain('/nonexistent/chromium');
  });
});
