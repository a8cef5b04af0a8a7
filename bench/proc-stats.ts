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
