// Parses what wrk prints: the `--latency` text summary and the JSON line our Lua done()
// hook writes (bench/loadgen/wrk.ts). The text gives only 50/75/90/99%; the JSON line
// gives exact counts and any percentile from wrk's own histogram. Both are kept so one
// checks the other.

/** The `--latency` text summary, durations in milliseconds. */
export interface WrkText {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  /** Keys are the printed percentiles: 50, 75, 90, 99. */
  latencyMs: Record<string, number>;
  /** wrk's "Non-2xx or 3xx responses": it counts statuses of 400 and above. */
  errorStatus: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

/** The done() hook's JSON, latency in microseconds as wrk records it. */
export interface WrkDone {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { min: number; mean: number; max: number; stdev: number; p50: number; p90: number; p99: number; p999: number };
}

export const DONE_MARKER = 'SLUICE_WRK_JSON ';

const TIME_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "123.45us", "1.20ms", "2.00s", "1m" -> milliseconds. */
export function parseWrkTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: unreadable duration "${text}"`);
  return Number(m[1]) * TIME_UNIT_MS[m[2]!]!;
}

export function parseWrkText(out: string): WrkText {
  const total = /^\s*(\d+) requests in ([\d.]+\w+),/m.exec(out);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (!total || !rps) throw new Error(`wrk: no summary in output:\n${out.slice(0, 2000)}`);
  const latencyMs: Record<string, number> = {};
  const dist = /Latency Distribution\n((?:\s+[\d.]+%\s+\S+\n)+)/.exec(out);
  for (const m of dist?.[1]?.matchAll(/([\d.]+)%\s+(\S+)/g) ?? []) latencyMs[String(Number(m[1]))] = parseWrkTime(m[2]!);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    durationS: parseWrkTime(total[2]!) / 1000,
    requestsPerSec: Number(rps[1]),
    latencyMs,
    errorStatus: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: {
      connect: Number(sock?.[1] ?? 0), read: Number(sock?.[2] ?? 0), write: Number(sock?.[3] ?? 0), timeout: Number(sock?.[4] ?? 0),
    },
  };
}

/** The done() hook's line, or null when the script did not run (e.g. wrk failed early). */
export function parseWrkDone(out: string): WrkDone | null {
  const line = out.split('\n').find((l) => l.startsWith(DONE_MARKER));
  return line ? (JSON.parse(line.slice(DONE_MARKER.length)) as WrkDone) : null;
}
