// scripts/apt-install.sh, shared by the install-*.sh scripts: every one reaches apt through
// it, and a machine without apt-get gets the caller's hint instead of a shell error.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPTS = resolve(import.meta.dirname, '../../scripts');

describe('scripts/apt-install.sh', () => {
  it('is how each install script runs apt-get', () => {
    for (const name of ['install-browser.sh', 'install-gunicorn.sh', 'install-redis.sh']) {
      const text = readFileSync(resolve(SCRIPTS, name), 'utf8');
      expect(text, name).toContain('"$(dirname "$0")/apt-install.sh"');
      expect(text, name).not.toMatch(/^\s*run apt-get/m);
    }
  });

  it('without apt-get, fails with one line: the caller name and its hint', () => {
    const run = spawnSync('/bin/sh', [resolve(SCRIPTS, 'apt-install.sh'), 'install-thing', 'install thing yourself', 'thing'], {
      encoding: 'utf8', env: { PATH: '/nonexistent' },
    });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('install-thing: no apt-get here; install thing yourself\n');
  });
});
