// HTTP-date (RFC 9110 §5.6.7), strictly: IMF-fixdate, and the obsolete RFC 850 and asctime
// forms a recipient must also accept. Anything else is invalid. Date.parse, which
// http-cache-semantics uses, accepts far more (`Thu, 01 Dec 2094 16:00:00 PST`, dashed
// dates, one-digit hours, missing commas), so a malformed Expires would read as a valid
// future date; RFC 9111 §5.3 says it must count as already expired. Case is the one
// leniency: a wrong-case day, month or GMT is read (the syntax is otherwise exact), as
// the best-behaved caches do.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

/** Milliseconds since the epoch, or undefined when `value` is not an HTTP-date. */
export function parseHttpDate(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  let m = IMF_FIXDATE.exec(value);
  if (m) return build(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC_850.exec(value);
  if (m) return build(fullYear(Number(m[3]), now), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = ASCTIME.exec(value);
  if (m) return build(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return undefined;
}

/** RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is the most recent past one. */
function fullYear(twoDigits: number, now: number): number {
  const current = new Date(now).getUTCFullYear();
  let year = Math.floor(current / 100) * 100 + twoDigits;
  if (year > current + 50) year -= 100;
  return year;
}

function build(year: number, month: string, day: number, hh: string, mm: string, ss: string): number | undefined {
  const monthIndex = MONTHS.findIndex((m) => m.toLowerCase() === month.toLowerCase());
  const [h, m, s] = [Number(hh), Number(mm), Number(ss)];
  if (h > 23 || m > 59 || s > 60 || day < 1) return undefined;
  const time = Date.UTC(year, monthIndex, day, h, m, Math.min(s, 59));
  // Date.UTC rolls 31 Feb into March; such a date does not exist.
  return new Date(time).getUTCDate() === day ? time : undefined;
}
