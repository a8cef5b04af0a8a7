// scripts/install-gunicorn.sh, which `npm test` runs first: nothing to do when Debian's
// gunicorn and Flask are there, and never a silent skip when they are not.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/install-gunicorn.sh');

describe('scripts/install-gunicorn.sh', () => {
  it('is run by npm test before the suite', () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.test).toContain('sh scripts/install-gunicorn.sh && vitest run');
  });

  it('does nothing, quietly, when /usr/bin/python3 already imports flask and gunicorn', () => {
    const found = spawnSync('/usr/bin/python3', ['-c', 'import flask, gunicorn']);
    expect(found.status).toBe(0); // npm test ran the script before the suite
    const run = spawnSync('sh', [SCRIPT], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout + run.stderr).toBe('');
  });

  it('as a user who cannot install, and with the packages hidden, fails with the command to run', () => {
    if (process.getuid?.() !== 0) return; // needs root to run as nobody; CI runs as root
    const copy = execFileSync('sh', ['-c', `sed 's#^PY=/usr/bin/python3#PY=/nonexistent/python3#' ${SCRIPT}`], { encoding: 'utf8' });
    const run = spawnSync('su', ['nobody', '-s', '/bin/sh', '-c', copy], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/sudo sh scripts\/install-gunicorn\.sh/);
  });
});
