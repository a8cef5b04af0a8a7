import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { BACKEND_USAGE, parseBackendArgs, parseDurationMs, runBackendCommand } from '../../src/testing/backend-cli.js';

function sink(): { write(s: string): boolean; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

afterEach(() => {
  process.exitCode = undefined;
});

describe('parseBackendArgs', () => {
  it('has the documented defaults', () => {
    expect(parseBackendArgs([])).toEqual({
      kind: 'run',
      options: {
        host: '127.0.0.1', port: 8000, slots: 50, model: 'semaphore', workers: 10, threads: 5, workerConnections: 1000, keepaliveMs: 5000,
        latencyMs: 100, reportLatencyMs: 2000, errorRate: 0, stallRate: 0, stallMs: 5000,
      },
    });
  });

  it('--model gthread: slots are workers x threads, Gunicorn\'s 2 s keep-alive by default', () => {
    expect(parseBackendArgs(['--model', 'gthread', '--workers', '4', '--threads', '3', '--worker-connections', '6'])).toMatchObject({
      kind: 'run', options: { model: 'gthread', slots: 12, workers: 4, threads: 3, workerConnections: 6, keepaliveMs: 2000 },
    });
    expect(parseBackendArgs(['--model', 'prefork']).kind).toBe('error');
    expect(parseBackendArgs(['--model', 'gthread', '--threads', '0']).kind).toBe('error');
  });

  it('accepts durations as 100ms, 2s or bare milliseconds', () => {
    expect(parseDurationMs('100ms')).toBe(100);
    expect(parseDurationMs('2s')).toBe(2000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('250')).toBe(250);
    expect(parseDurationMs('fast')).toBeNull();
    const parsed = parseBackendArgs(['--port', '0', '--slots', '5', '--latency', '2s', '--report-latency', '300', '--error-rate', '0.25', '--stall-rate', '0.1', '--stall-ms', '1s']);
    expect(parsed).toMatchObject({ kind: 'run', options: { port: 0, slots: 5, latencyMs: 2000, reportLatencyMs: 300, errorRate: 0.25, stallRate: 0.1, stallMs: 1000 } });
  });

  it('rejects unknown flags and invalid values', () => {
    for (const argv of [['--bogus'], ['--slots', '0'], ['--port', '70000'], ['--latency', 'soon'], ['--error-rate', '2'], ['extra']]) {
      expect(parseBackendArgs(argv).kind, argv.join(' ')).toBe('error');
    }
  });
});

describe('runBackendCommand', () => {
  it('--help prints the usage and returns', async () => {
    const stdout = sink();
    await runBackendCommand(['--help'], { stdout });
    expect(stdout.text).toBe(BACKEND_USAGE);
    expect(process.exitCode).toBeUndefined();
  });

  it('bad arguments print to stderr and set exit code 2', async () => {
    const stdout = sink();
    const stderr = sink();
    await runBackendCommand(['--slots', 'many'], { stdout, stderr });
    expect(stderr.text).toMatch(/^sluice backend: --slots must be an integer/);
    expect(stdout.text).toBe('');
    expect(process.exitCode).toBe(2);
  });

  it('prints one listening line, serves, and closes on SIGTERM with exit code 0', async () => {
    const stdout = sink();
    const signals = new EventEmitter();
    const done = runBackendCommand(['--port', '0', '--slots', '3', '--latency', '5'], { stdout, signals });
    while (!stdout.text.includes('\n')) await new Promise((r) => setTimeout(r, 5));
    const m = /^sluice test backend listening on http:\/\/127\.0\.0\.1:(\d+) \(slots=3, latency=5ms\)\n$/.exec(stdout.text);
    expect(m).not.toBeNull();
    const res = await request(`http://127.0.0.1:${m![1]}/health`);
    expect(await res.body.text()).toBe('ok');
    signals.emit('SIGTERM');
    await done;
    expect(process.exitCode).toBe(0);
    expect(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT')).toBe(0);
    await expect(request(`http://127.0.0.1:${m![1]}/health`)).rejects.toThrow();
  });
});
