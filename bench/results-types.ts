import type { RunResult } from './execute.js';
import type { FloorSummary } from './floor-targets.js';
import type { SelfCheckResult } from './loadgen/index.js';
import type { Mode, ScenarioId, SystemName } from './scenarios.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memTotalMiB: number;
  node: string;
  platform: string;
  kernel: string;
  /** Soft open-files limit the bench and its children run with. */
  openFilesLimit: number | null;
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  load: string;
  systems: SystemName[];
  runs: RunResult[];
  /** S6 only: the generator, the plan and the targets against the Node floor. */
  floor?: FloorSummary;
}

/** A flame summary of the Sluice processes' CPU profiles (`--cpu-prof`). */
export interface ProfileReport {
  /** The system the profiles came from, e.g. sluice. */
  label: string;
  dir: string;
  files: number;
  /** Markdown: top functions by self time and the rollup by area. */
  summary: string;
}

/** The whole of bench/results/<timestamp>.json. */
export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  mode: Mode;
  backend: { kind: 'test' | 'gthread' | 'gunicorn'; url: string; slots: number; latency: string };
  machine: MachineInfo;
  selfCheck: SelfCheckResult;
  /** The Sluice config every Sluice run used (YAML). */
  sluiceConfig: string | null;
  scenarios: ScenarioResult[];
  notes: string[];
  profiles?: ProfileReport[];
}
