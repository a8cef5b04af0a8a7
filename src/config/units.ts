// Human units in the YAML file: durations like `100ms`, `30s`, `2m`, `1h` and sizes like
// `64MiB`, `512KiB`, `1MB`, `1024`. Parsed once at load; the rest of Sluice sees numbers
// (milliseconds and bytes).

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1000, kb: 1000, m: 1000 ** 2, mb: 1000 ** 2, g: 1000 ** 3, gb: 1000 ** 3,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3,
};

/** Returns milliseconds, or an error message. A bare 0 is allowed; other bare numbers are ambiguous. */
export function parseDuration(value: unknown): number | string {
  if (value === 0 || value === '0') return 0;
  if (typeof value !== 'string') return 'expected a duration with a unit, like 100ms, 30s, 2m or 1h';
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!match) return `invalid duration "${value}": use a number and a unit (ms, s, m, h), like 30s`;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!]!);
}

/** Returns bytes, or an error message. A bare number is bytes. */
export function parseSize(value: unknown): number | string {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value !== 'string') return 'expected a size, like 1048576, 512KiB or 64MiB';
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const factor = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) return `invalid size "${value}": use bytes or a unit (KiB, MiB, GiB, KB, MB, GB)`;
  return Math.round(Number(match[1]) * factor);
}
