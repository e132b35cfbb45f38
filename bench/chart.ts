// Grouped bar charts as standalone SVG, written by the benchmark run itself (no external service,
// no dependency): RESULTS.md embeds them next to the tables they summarise.
//
// A chart has groups (e.g. "advert_int 1 s") and, per group, one bar per series (e.g.
// keepalive-ts, keepalived); each bar shows the median and, as a thin whisker, the range of the
// raw values. An optional dashed line marks a target.

export interface ChartSeries {
  name: string;
  /** Raw values per group, in group order (NaN = no value). */
  values: number[][];
}

export interface Chart {
  /** File name without extension (bench/charts/<id>.svg). */
  id: string;
  title: string;
  unit: string;
  groups: string[];
  series: ChartSeries[];
  /** Horizontal reference lines, e.g. a target. */
  lines?: { value: number; label: string }[];
  /** Values in this chart are better when higher (only shown in the subtitle). */
  better?: 'lower' | 'higher';
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#7f7f7f'];
const W = 720;
const H = 360;
const PAD = { left: 70, right: 20, top: 50, bottom: 70 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function median(v: number[]): number {
  const x = v.filter(Number.isFinite).sort((a, b) => a - b);
  if (x.length === 0) return Number.NaN;
  const m = Math.floor(x.length / 2);
  return x.length % 2 ? x[m]! : (x[m - 1]! + x[m]!) / 2;
}

/** A "nice" upper bound and tick step for the axis. */
function axis(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 10_000) return `${(v / 1000).toFixed(a >= 100_000 ? 0 : 1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** The chart as an SVG document. Pure. */
export function renderChart(c: Chart): string {
  // Legend entries flow into as many rows as they need; the picture grows by one line per extra row.
  const legend: Array<{ x: number; row: number }> = [];
  let lx = PAD.left;
  let row = 0;
  for (const s of c.series) {
    const w = 24 + s.name.length * 7;
    if (lx + w > W - PAD.right && lx > PAD.left) { row++; lx = PAD.left; }
    legend.push({ x: lx, row });
    lx += w;
  }
  const extra = row * 16;
  const all = c.series.flatMap((s) => s.values.flat()).filter(Number.isFinite);
  const lineMax = Math.max(0, ...(c.lines ?? []).map((l) => l.value));
  const { top, step } = axis(Math.max(lineMax, ...all, 0));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v: number) => PAD.top + plotH - (Math.min(v, top) / top) * plotH;
  const groupW = plotW / Math.max(1, c.groups.length);
  const barW = Math.min(48, (groupW * 0.8) / Math.max(1, c.series.length));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + extra}" viewBox="0 0 ${W} ${H + extra}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H + extra}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<text x="${W / 2}" y="37" text-anchor="middle" fill="#555">${esc(`${c.unit}${c.better ? `, ${c.better} is better` : ''}; bar = median, whisker = range of the repetitions`)}</text>`);
  for (let v = 0; v <= top + 1e-9; v += step) {
    const yy = y(v);
    out.push(`<line x1="${PAD.left}" y1="${yy}" x2="${W - PAD.right}" y2="${yy}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${yy + 4}" text-anchor="end" fill="#333">${esc(fmt(v))}</text>`);
  }
  out.push(`<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${W - PAD.right}" y2="${PAD.top + plotH}" stroke="#333"/>`);
  c.groups.forEach((g, gi) => {
    const gx = PAD.left + gi * groupW + (groupW - barW * c.series.length) / 2;
    c.series.forEach((s, si) => {
      const vals = (s.values[gi] ?? []).filter(Number.isFinite);
      const m = median(vals);
      const x = gx + si * barW;
      const color = PALETTE[si % PALETTE.length]!;
      if (Number.isFinite(m)) {
        out.push(`<rect x="${x + 2}" y="${y(m)}" width="${barW - 4}" height="${PAD.top + plotH - y(m)}" fill="${color}"><title>${esc(`${s.name}, ${g}: median ${fmt(m)} ${c.unit} (${vals.map(fmt).join(', ')})`)}</title></rect>`);
        const lo = Math.min(...vals);
        const hi = Math.max(...vals);
        if (hi > lo) out.push(`<line x1="${x + barW / 2}" y1="${y(lo)}" x2="${x + barW / 2}" y2="${y(hi)}" stroke="#222" stroke-width="1.5"/>`);
        out.push(`<text x="${x + barW / 2}" y="${y(m) - 4}" text-anchor="middle" font-size="10" fill="#222">${esc(fmt(m))}</text>`);
      } else {
        out.push(`<text x="${x + barW / 2}" y="${PAD.top + plotH - 4}" text-anchor="middle" font-size="10" fill="#999">n/a</text>`);
      }
    });
    out.push(`<text x="${PAD.left + gi * groupW + groupW / 2}" y="${PAD.top + plotH + 16}" text-anchor="middle" fill="#333">${esc(g)}</text>`);
  });
  for (const l of c.lines ?? []) {
    const yy = y(l.value);
    out.push(`<line x1="${PAD.left}" y1="${yy}" x2="${W - PAD.right}" y2="${yy}" stroke="#d62728" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${W - PAD.right}" y="${yy - 4}" text-anchor="end" fill="#d62728" font-size="11">${esc(l.label)}</text>`);
  }
  c.series.forEach((s, si) => {
    const { x, row: r } = legend[si]!;
    const ly = H - 22 + r * 16;
    out.push(`<rect x="${x}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[si % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 16}" y="${ly}" fill="#333">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
