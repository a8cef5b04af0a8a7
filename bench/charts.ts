import type { RunResult } from './execute.js';
import type { WorkloadResult } from './loadgen/index.js';
import type { BenchResults } from './results-types.js';
import type { SystemName } from './scenarios.js';

/**
 * Two hand-written SVG charts (no dependencies): latency percentiles per system per
 * scenario workload (log scale), and goodput as a share of the offered load. Where a
 * system ran more than once, the worst run is drawn.
 */

const COLORS: Record<SystemName, [string, string, string]> = {
  direct: ['#f4a582', '#d6604d', '#b2182b'],
  sluice: ['#92c5de', '#4393c3', '#2166ac'],
  'sluice-traced': ['#c2a5cf', '#9970ab', '#762a83'],
  'sluice-compact': ['#a6dba0', '#5aae61', '#1b7837'],
  'node-http': ['#d9d9d9', '#969696', '#525252'],
  'node-proxy': ['#fdd0a2', '#fd8d3c', '#a63603'],
};

interface Group {
  label: string;
  closed: boolean;
  offered: number;
  bySystem: { system: SystemName; worst: WorkloadResult }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const text = (x: number, y: number, s: string, extra = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${extra}>${esc(s)}</text>`;
const rect = (x: number, y: number, w: number, h: number, fill: string, title?: string): string => {
  const attrs = `x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${fill}"`;
  return title === undefined ? `<rect ${attrs}/>` : `<rect ${attrs}><title>${esc(title)}</title></rect>`;
};
const line = (x1: number, y1: number, x2: number, y2: number, stroke = '#ccc'): string =>
  `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}"/>`;

function worstOf(runs: WorkloadResult[]): WorkloadResult {
  return runs.reduce((a, b) => (b.latency.p99 > a.latency.p99 || (b.latency.p99 === a.latency.p99 && b.goodput < a.goodput) ? b : a));
}

export function chartGroups(r: BenchResults): Group[] {
  const groups: Group[] = [];
  for (const s of r.scenarios) {
    const names = [...new Set(s.runs.flatMap((run: RunResult) => run.workloads.map((w) => w.name)))];
    for (const name of names) {
      const bySystem = s.systems.flatMap((system) => {
        const ws = s.runs.filter((run) => run.system === system).flatMap((run) => run.workloads.filter((w) => w.name === name));
        return ws.length ? [{ system, worst: worstOf(ws) }] : [];
      });
      const first = bySystem[0]?.worst;
      if (!first) continue;
      groups.push({ label: `${s.id} ${name}`, closed: first.kind === 'closed', offered: first.offeredRate, bySystem });
    }
  }
  return groups;
}

const W_BAR = 14;
const GAP = 28;
const PAD = { left: 120, right: 20, top: 50, bottom: 110 };
const PLOT_H = 320;

function frame(width: number, title: string, body: string[]): string {
  const height = PAD.top + PLOT_H + PAD.bottom;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    rect(0, 0, width, height, '#fff'),
    text(PAD.left, 24, title, 'font-size="15" font-weight="bold"'),
    ...body,
    '</svg>',
  ].join('\n');
}

/** One entry per system: its swatches (one per shade shown), then its name. */
function legend(x: number, systems: SystemName[], shades: (0 | 1 | 2)[], caption: string): string[] {
  const out: string[] = [];
  let cx = x;
  for (const s of systems) {
    for (const shade of shades) {
      out.push(rect(cx, 32, 10, 10, COLORS[s][shade]));
      cx += 10;
    }
    out.push(text(cx + 4, 41, s));
    cx += 16 + s.length * 6.5;
  }
  if (caption) out.push(text(cx, 41, caption, 'fill="#555"'));
  return out;
}

function systemsOf(groups: Group[]): SystemName[] {
  return [...new Set(groups.flatMap((g) => g.bySystem.map((b) => b.system)))];
}

export function latencySvg(r: BenchResults): string {
  const groups = chartGroups(r);
  const groupW = (g: Group): number => g.bySystem.length * 3 * W_BAR + (g.bySystem.length - 1) * 6;
  const width = Math.max(900, PAD.left + groups.reduce((w, g) => w + groupW(g) + GAP, 0) + PAD.right);
  const maxMs = Math.max(1, ...groups.flatMap((g) => g.bySystem.map((b) => b.worst.latency.p99)));
  const decades = Math.max(1, Math.ceil(Math.log10(maxMs)));
  const y = (v: number): number => PAD.top + PLOT_H - (Math.log10(Math.max(1, v)) / decades) * PLOT_H;
  const body: string[] = [];
  for (let d = 0; d <= decades; d++) {
    const v = 10 ** d;
    body.push(line(PAD.left, y(v), width - PAD.right, y(v)), text(PAD.left - 8, y(v) + 4, `${v.toLocaleString('en-US')} ms`, 'text-anchor="end"'));
  }
  let x = PAD.left + GAP / 2;
  for (const g of groups) {
    let bx = x;
    for (const b of g.bySystem) {
      const ps = [b.worst.latency.p50, b.worst.latency.p90, b.worst.latency.p99];
      ps.forEach((v, i) => {
        body.push(rect(bx, y(v), W_BAR - 1, PAD.top + PLOT_H - y(v), COLORS[b.system][i] ?? '#000', `${g.label} ${b.system} p${[50, 90, 99][i]}: ${v} ms`));
        bx += W_BAR;
      });
      bx += 6;
    }
    body.push(text(x + groupW(g) / 2, PAD.top + PLOT_H + 16, g.label, `text-anchor="end" transform="rotate(-30 ${(x + groupW(g) / 2).toFixed(1)} ${PAD.top + PLOT_H + 16})"`));
    x += groupW(g) + GAP;
  }
  body.push(...legend(PAD.left + 400, systemsOf(groups), [0, 1, 2], 'bars per system: p50, p90, p99'));
  return frame(width, 'Latency of ok responses (log scale; worst run)', body);
}

export function goodputSvg(r: BenchResults): string {
  const groups = chartGroups(r);
  const groupW = (g: Group): number => g.bySystem.length * (W_BAR * 2 + 4);
  const width = Math.max(900, PAD.left + groups.reduce((w, g) => w + groupW(g) + GAP, 0) + PAD.right);
  const share = (g: Group, b: Group['bySystem'][number]): number => {
    // Closed loop has no offered rate: compare against the best system instead.
    const ref = g.closed ? Math.max(...g.bySystem.map((o) => o.worst.goodput)) : g.offered;
    return ref > 0 ? b.worst.goodput / ref : 0;
  };
  const y = (f: number): number => PAD.top + PLOT_H - Math.min(1.05, f) / 1.05 * PLOT_H;
  const body: string[] = [];
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    body.push(line(PAD.left, y(f), width - PAD.right, y(f)), text(PAD.left - 8, y(f) + 4, `${f * 100}%`, 'text-anchor="end"'));
  }
  let x = PAD.left + GAP / 2;
  for (const g of groups) {
    let bx = x;
    for (const b of g.bySystem) {
      const f = share(g, b);
      body.push(
        rect(bx, y(f), W_BAR * 2, PAD.top + PLOT_H - y(f), COLORS[b.system][1], `${g.label} ${b.system}: ${b.worst.goodput} ok/s`),
        text(bx + W_BAR, y(f) - 4, b.worst.goodput >= 100 ? Math.round(b.worst.goodput).toString() : b.worst.goodput.toFixed(1), 'text-anchor="middle" font-size="9"'),
      );
      bx += W_BAR * 2 + 4;
    }
    const label = g.closed ? `${g.label} (vs best)` : `${g.label} (${g.offered}/s)`;
    body.push(text(x + groupW(g) / 2, PAD.top + PLOT_H + 16, label, `text-anchor="end" transform="rotate(-30 ${(x + groupW(g) / 2).toFixed(1)} ${PAD.top + PLOT_H + 16})"`));
    x += groupW(g) + GAP;
  }
  body.push(...legend(PAD.left + 520, systemsOf(groups), [1], ''));
  return frame(width, 'Goodput as a share of offered load (labels: ok responses/s; worst run)', body);
}
