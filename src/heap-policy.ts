// V8 heap flags of `sluice start`, imported first by cli.ts so they apply before the modules
// load (the young generation, once grown, stays grown). Held idle keep-alive connections are
// live heap, and V8's default policy lets the old generation grow to a multiple of it and
// the young one to 32 MiB before collecting: 10,000 idle clients cost ~240-280 MiB RSS.
// Growing the old generation by 10% and keeping the young one at its initial size holds them
// in ~145-155 MiB. --optimize-for-size saved as much memory but cost a third of peak
// throughput and compacting pauses every second. A flag given on node's command line wins.
import { setFlagsFromString } from 'node:v8';

const HEAP_FLAGS = ['--heap-growing-percent=10', '--semi-space-growth-factor=1'];

if (process.argv[2] === 'start') {
  for (const flag of HEAP_FLAGS) {
    const name = flag.slice(2, flag.indexOf('='));
    if (!process.execArgv.some((arg) => arg.replace(/_/g, '-').startsWith(`--${name}`))) setFlagsFromString(flag);
  }
}
