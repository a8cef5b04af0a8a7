import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times; 100 on virtually every Linux. */
export function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** utime + stime of a process in seconds, or undefined when it is gone. */
export function readCpuSeconds(pid: number, ticks: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticks;
  } catch {
    return undefined;
  }
}

/** Current and peak (VmHWM) resident set size in MiB. */
export function readMemoryMiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds all processes on the machine spent (user + nice + system, all cores).
 * Interrupt and softirq time is left out: loopback traffic from the bench itself lands
 * there without being charged to any process.
 */
export function readMachineBusySeconds(ticks: number): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [user, nice, system] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0)) / ticks;
  } catch {
    return undefined;
  }
}

export interface MachineLoad {
  /** Average cores busy on the whole machine during the window. */
  busyCores: number;
  /** Of those, cores used by processes other than the ones accounted (see `accounted`). */
  otherCores: number;
  /** The pids whose CPU was not counted as "other". */
  accounted: number;
}

/**
 * Accounts the machine's CPU over a window, to show when something outside the
 * benchmark (another build, another test run) competed with it for the cores.
 */
export class MachineMeter {
  private readonly ticks = clockTicks();
  private readonly t0 = performance.now();
  private readonly busy0: number;
  private readonly own0: number;

  constructor(private readonly ownPids: number[]) {
    this.busy0 = readMachineBusySeconds(this.ticks) ?? 0;
    this.own0 = this.ownCpu();
  }

  private ownCpu(): number {
    return this.ownPids.reduce((sum, pid) => sum + (readCpuSeconds(pid, this.ticks) ?? 0), 0);
  }

  stop(): MachineLoad {
    const wallS = Math.max(0.001, (performance.now() - this.t0) / 1000);
    const busy = (readMachineBusySeconds(this.ticks) ?? this.busy0) - this.busy0;
    const own = this.ownCpu() - this.own0;
    const r2 = (x: number): number => Math.round(x * 100) / 100;
    return { busyCores: r2(busy / wallS), otherCores: r2(Math.max(0, busy - own) / wallS), accounted: this.ownPids.length };
  }
}

export interface ProcessUsage {
  pid: number;
  /** CPU seconds spent between start() and stop(). */
  cpuS: number;
  rssStartMiB: number;
  /** Highest VmRSS seen by the sampler. */
  rssMaxSampledMiB: number;
  /** Kernel-tracked peak RSS over the whole process life (VmHWM). */
  peakRssMiB: number;
}

/**
 * Samples one process's CPU and memory over a window. VmHWM catches peaks between
 * samples; the sampled maximum shows whether the peak happened inside the window.
 */
export class ProcSampler {
  private readonly ticks = clockTicks();
  private cpuStart = 0;
  private rssStart = 0;
  private rssMax = 0;
  private hwm = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: number, private readonly intervalMs = 250) {}

  start(): void {
    this.cpuStart = readCpuSeconds(this.pid, this.ticks) ?? 0;
    const mem = readMemoryMiB(this.pid);
    this.rssStart = mem?.rss ?? 0;
    this.rssMax = this.rssStart;
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  private sample(): void {
    const mem = readMemoryMiB(this.pid);
    if (!mem) return;
    this.rssMax = Math.max(this.rssMax, mem.rss);
    this.hwm = Math.max(this.hwm, mem.hwm);
  }

  stop(): ProcessUsage {
    clearInterval(this.timer);
    this.sample();
    const cpuEnd = readCpuSeconds(this.pid, this.ticks) ?? this.cpuStart;
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    return {
      pid: this.pid,
      cpuS: Math.round((cpuEnd - this.cpuStart) * 100) / 100,
      rssStartMiB: r1(this.rssStart),
      rssMaxSampledMiB: r1(this.rssMax),
      peakRssMiB: r1(this.hwm),
    };
  }
}
