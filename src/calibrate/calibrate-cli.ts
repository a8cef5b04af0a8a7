import { parseArgs } from 'node:util';
import { parseDuration } from '../config/units.js';
import { calibrate, concurrencyLadder, DEFAULT_PEAK_FRACTION } from './calibrate.js';

export const CALIBRATE_USAGE = `Usage: sluice calibrate --url URL [--max N] [--expect N] [--step 3s]

Measures how many requests a backend really runs at once: closed-loop GETs of URL at
rising concurrency (1, 2, 4, ... up to --max, and finer steps around --expect), each for
--step. Reports the effective concurrency at the peak (throughput x single-request
latency) and recommends the smallest concurrency that reaches 92% of the peak
throughput; put that in backend.servers[].slots.
Use an endpoint whose work is a fixed sleep or I/O wait (e.g. /api/items/1 of the test
backend); point it only at a backend you may load.
`;

export async function runCalibrateCommand(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' }, max: { type: 'string' }, expect: { type: 'string' },
        step: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`sluice calibrate: ${(err as Error).message}\n${CALIBRATE_USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (values.help || !values.url) {
    (values.help ? process.stdout : process.stderr).write(CALIBRATE_USAGE);
    if (!values.help) process.exitCode = 2;
    return;
  }
  const max = Number(values.max ?? 64);
  const expected = values.expect !== undefined ? Number(values.expect) : undefined;
  const stepMs = parseDuration(values.step ?? '3s');
  if (!Number.isInteger(max) || max < 1 || typeof stepMs === 'string' || (expected !== undefined && !(expected >= 1))) {
    process.stderr.write(`sluice calibrate: invalid --max, --expect or --step\n`);
    process.exitCode = 2;
    return;
  }
  const result = await calibrate({
    url: values.url, concurrencies: concurrencyLadder(max, expected), stepMs, peakFraction: DEFAULT_PEAK_FRACTION,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const { peak } = result;
  process.stdout.write(`baseline mean ${result.baselineMeanMs.toFixed(1)} ms; peak ${peak.throughputPerSecond.toFixed(1)} req/s at concurrency ${peak.concurrency}\n`);
  const recycled = result.steps.reduce((sum, s) => sum + s.recycled, 0);
  process.stdout.write(`effective concurrency at peak: ${result.effectiveConcurrency.toFixed(1)}\nrecommended slots: ${result.recommendedSlots}\n`);
  if (recycled > 0) process.stdout.write(`connections recycled because requests waited inside the backend: ${recycled} (normal for Gunicorn gthread, whose workers accept connections unevenly)\n`);
}
