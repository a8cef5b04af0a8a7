// The deployment files can't run here (no Docker, no systemd), so what they promise is
// checked by reading them: the image's install layer caches, its config cannot proxy to
// the container itself, and every stopper waits longer than Sluice's drain.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, parseConfigText } from '../src/config/load.js';
import { parseDuration } from '../src/config/units.js';

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');
const CONFIG = read('config/sluice.yaml');
const DOCKERFILE = read('Dockerfile');

/** The runtime stage's ENV values (the last FROM onwards). */
function imageEnv(): Record<string, string> {
  const runtime = DOCKERFILE.slice(DOCKERFILE.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const [, block] of runtime.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const [, key, value] of block!.matchAll(/([A-Z_]+)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

/** config/sluice.yaml as the image holds it, after the Dockerfile's sed. */
function imageConfig(): string {
  const [, from, to] = /sed -i 's\|(.+?)\|(.+?)\|' \/etc\/sluice\/sluice\.yaml/.exec(DOCKERFILE) ?? [];
  expect(from, 'the Dockerfile edits the backend URL of the image config').toBeDefined();
  expect(CONFIG).toContain(from);
  return CONFIG.replace(from!, to!);
}

function ms(duration: string): number {
  const parsed = parseDuration(duration);
  if (typeof parsed !== 'number') throw new Error(parsed);
  return parsed;
}

describe('Dockerfile', () => {
  it('installs dependencies from the manifests alone, before any source is copied', () => {
    const lines = DOCKERFILE.split('\n');
    const manifests = lines.findIndex((l) => /^COPY package\.json package-lock\.json \.\/$/.test(l));
    const install = lines.findIndex((l) => /^RUN npm ci .*--ignore-scripts.* && npm rebuild better-sqlite3$/.test(l));
    const sources = lines.findIndex((l) => /^COPY (src|bench|tsconfig\.json)\b/.test(l));
    expect(manifests).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(manifests);
    expect(sources).toBeGreaterThan(install);
  });

  it('has no default backend: without BACKEND_URL the image config fails at start naming it', () => {
    const env = imageEnv();
    expect(() => parseConfigText(imageConfig(), 'sluice.yaml', env)).toThrow(ConfigError);
    try {
      parseConfigText(imageConfig(), 'sluice.yaml', env);
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([expect.stringMatching(/^sluice\.yaml:\d+:\d+: environment variable BACKEND_URL is not set/)]);
    }
    const config = parseConfigText(imageConfig(), 'sluice.yaml', { ...env, BACKEND_URL: 'http://app:8000' });
    expect(config.backend.servers[0]!.url).toBe('http://app:8000');
    expect(config.jobs.path).toBe('/var/lib/sluice/sluice-jobs.db');
  });

  it("drains within docker stop's default 10 s", () => {
    const config = parseConfigText(imageConfig(), 'sluice.yaml', { ...imageEnv(), BACKEND_URL: 'http://app:8000' });
    expect(config.shutdown.grace).toBeLessThanOrEqual(9_000);
    expect(DOCKERFILE).toMatch(/^STOPSIGNAL SIGTERM$/m);
  });
});

describe('docs/deploy/docker-compose.yml', () => {
  const compose = parse(read('docs/deploy/docker-compose.yml')) as {
    services: Record<string, { environment?: Record<string, string>; stop_grace_period?: string; build?: { context: string; dockerfile_inline?: string }; expose?: string[] }>;
  };

  it('points Sluice at the app service and gives Docker more time than the drain', () => {
    const { sluice, app } = compose.services;
    expect(sluice!.environment!.BACKEND_URL).toBe(`http://app:${app!.environment!.PORT}`);
    expect(app!.environment!.HOST).toBe('0.0.0.0');
    const config = parseConfigText(CONFIG, 'sluice.yaml', { ...imageEnv(), ...sluice!.environment });
    expect(config.backend.servers[0]).toMatchObject({ url: 'http://app:8000', slots: 50 });
    expect(ms(sluice!.stop_grace_period!)).toBeGreaterThan(config.shutdown.grace);
  });

  it('builds the Flask/Gunicorn example from files that exist', () => {
    const { app, sluice } = compose.services;
    const context = resolve(ROOT, 'docs/deploy', app!.build!.context);
    for (const [, files] of app!.build!.dockerfile_inline!.matchAll(/^COPY (.+) \.\/$/gm)) {
      for (const file of files!.split(' ')) expect(() => readFileSync(resolve(context, file))).not.toThrow();
    }
    expect(readFileSync(resolve(ROOT, 'docs/deploy', sluice!.build!.context, 'Dockerfile'), 'utf8')).toBe(DOCKERFILE);
  });
});

describe('docs/deploy/sluice.service', () => {
  const unit = read('docs/deploy/sluice.service');
  const setting = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(unit)?.[1];

  it('stops with SIGTERM, waits longer than the grace period, and reloads with SIGHUP', () => {
    const config = parseConfigText(CONFIG, 'sluice.yaml', {});
    expect(setting('KillSignal')).toBe('SIGTERM');
    expect(ms(setting('TimeoutStopSec')!)).toBeGreaterThan(config.shutdown.grace);
    expect(setting('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(setting('ExecStart')).toMatch(/cli\.js start --config \/etc\/sluice\/sluice\.yaml$/);
    expect(setting('RestartPreventExitStatus')).toBe('2');
  });
});
