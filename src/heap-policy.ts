// `sluice start --compact-heap`: V8 heap flags for a gateway that holds very many idle
// keep-alive clients. Imported first by cli.ts, so they apply before the modules load (the
// young generation, once grown, stays grown). Held idle connections are live heap, and
// V8's default policy lets the old generation grow to a multiple of it and the young one
// to 32 MiB before collecting: 10,000 idle clients cost ~200-280 MiB RSS. Growing the old
// generation by 10% and keeping the young one at its initial size holds them in ~145-155
// MiB, but costs 15-25% of peak throughput (more, smaller collections), so it is opt-in:
// on a small machine shared with the backend, Sluice's CPU comes out of the backend's.
// A flag given on node's command line wins. --optimize-for-size saved as much memory but
// cost a third of peak throughput and compacting pauses every second.
import { setFlagsFromString } from 'node:v8';

export const COMPACT_HEAP_FLAG = '--compact-heap';
const HEAP_FLAGS = ['--heap-growing-percent=10', '--semi-space-growth-factor=1'];

if (process.argv[2] === 'start' && process.argv.includes(COMPACT_HEAP_FLAG)) {
  for (const flag of HEAP_FLAGS) {
    const name = flag.slice(2, flag.indexOf('='));
    if (!process.execArgv.some((arg) => arg.replace(/_/g, '-').startsWith(`--${name}`))) setFlagsFromString(flag);
  }
}
