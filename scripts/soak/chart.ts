// The soak's chart: an SVG of memory over time (docs/soak.md, "Reading the chart").
import type { Sample } from './sampler.js';
import { fmt, type SlopeResult } from './verdict.js';

const MB = 1024 * 1024;

function niceStep(span: number, ticks: number): number {
  const raw = span / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

/** A white outline behind text that sits over the lines. */
const HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface ChartInfo {
  title: string;
  subtitle: string[];
  pass: boolean;
  threads: number;
  rssSlope: SlopeResult;
  churnEnd: number;
  dropAt: number | undefined;
}

/**
 * The chart: memory in MB over time (RSS, arena committed and live, V8 heap)
 * with the slope window shaded and the fitted RSS line drawn over it; under
 * it a strip with the worker threads and the live vectors.
 */
export function chart(rows: Sample[], info: ChartInfo): string {
  const W = 1000;
  const H = 612;
  const L = 70;
  const R = 70;
  const T = 104; // main panel
  const ph = 350;
  const T2 = T + ph + 28; // threads and vectors strip
  const ph2 = 70;
  const pw = W - L - R;
  const open = rows.filter((r) => r.phase !== 'closed');
  const tMax = Math.max(1, ...rows.map((r) => r.t));
  const yTop = Math.max(1, ...rows.map((r) => Math.max(r.rss, r.committed, r.heapUsed) / MB)) * 1.05;
  const inMinutes = tMax > 180;
  const xStep = niceStep(inMinutes ? tMax / 60 : tMax, 10) * (inMinutes ? 60 : 1);
  const yStep = niceStep(yTop, 8);
  const yMax = Math.ceil(yTop / yStep) * yStep;
  const x = (t: number): number => L + (t / tMax) * pw;
  const y = (mb: number): number => T + ph - (mb / yMax) * ph;
  const path = (data: Sample[], pick: (s: Sample) => number, yy: (v: number) => number, step = false): string =>
    data.map((r, i) => {
      const px = fmt(x(r.t));
      const py = fmt(yy(pick(r)));
      if (i === 0) return `M${px},${py}`;
      return step ? `H${px} V${py}` : `L${px},${py}`;
    }).join(' ');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${L}" y="26" font-size="17" font-weight="bold" fill="#222">${esc(info.title)}</text>`);
  info.subtitle.forEach((line, i) => out.push(`<text x="${L}" y="${46 + i * 16}" fill="#555">${esc(line)}</text>`));
  out.push(`<rect x="${W - R - 70}" y="10" width="70" height="26" rx="4" fill="${info.pass ? '#1a7f37' : '#cf222e'}"/>`);
  out.push(`<text x="${W - R - 35}" y="28" text-anchor="middle" font-size="14" font-weight="bold" fill="#fff">${info.pass ? 'PASS' : 'FAIL'}</text>`);

  const series = [
    { label: 'process RSS', color: '#0969da', width: 2.4, dash: '', pick: (s: Sample) => s.rss, data: rows },
    { label: 'arena committed', color: '#d4731a', width: 2, dash: '', pick: (s: Sample) => s.committed, data: open },
    { label: 'arena live', color: '#2da44e', width: 2, dash: '', pick: (s: Sample) => s.live, data: open },
    { label: 'V8 heap used', color: '#9aa5b1', width: 1.2, dash: '4 3', pick: (s: Sample) => s.heapUsed, data: open },
  ];

  // legend: one row above the plot, never over the data
  const legend = [
    ...series.map((s) => ({ label: s.label, color: s.color, dash: s.dash, width: s.width, tick: false })),
    { label: `RSS fit ${fmt(info.rssSlope.mbPerMin, 2)} MB/min`, color: '#cf222e', dash: '6 4', width: 1.6, tick: false },
    { label: 'compaction', color: '#8250df', dash: '', width: 1.5, tick: true },
  ];
  let lx = L;
  const ly = T - 16;
  for (const e of legend) {
    if (e.tick) out.push(`<line x1="${lx + 11}" x2="${lx + 11}" y1="${ly - 9}" y2="${ly + 3}" stroke="${e.color}" stroke-width="${e.width}"/>`);
    else out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${e.color}" stroke-width="${e.width}"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" fill="#222">${esc(e.label)}</text>`);
    lx += 28 + e.label.length * 6.8 + 18;
  }

  // slope window
  const [w0, w1] = info.rssSlope.window;
  out.push(`<rect x="${fmt(x(w0))}" y="${T}" width="${fmt(Math.max(0, x(w1) - x(w0)))}" height="${ph}" fill="#eef2f8"/>`);
  out.push(`<text x="${fmt((x(w0) + x(w1)) / 2)}" y="${T + 24}" text-anchor="middle" fill="#777" font-size="11" ${HALO}>slope window: last half of the churn</text>`);

  // grid, axes, labels
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${fmt(y(v))}" y2="${fmt(y(v))}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${L - 8}" y="${fmt(y(v) + 4)}" text-anchor="end" fill="#444">${Number(v.toFixed(3))}</text>`);
  }
  for (let v = 0; v <= tMax + 1e-9; v += xStep) {
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T}" y2="${T + ph}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T2}" y2="${T2 + ph2 + 5}" stroke="#e8e8e8"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T + ph}" y2="${T + ph + 5}" stroke="#444"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T2 + ph2}" y2="${T2 + ph2 + 5}" stroke="#444"/>`);
    const label = inMinutes ? `${Number((v / 60).toFixed(2))}` : `${Number(v.toFixed(1))}`;
    out.push(`<text x="${fmt(x(v))}" y="${T2 + ph2 + 19}" text-anchor="middle" fill="#444">${label}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#222">${inMinutes ? 'time since the store opened (min)' : 'time since the store opened (s)'}</text>`);
  out.push(`<text transform="translate(20 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">memory (MB)</text>`);

  // compactions: a tick at the top for each second in which one finished
  for (let i = 1; i < open.length; i++) {
    if (open[i]!.compactions > open[i - 1]!.compactions) {
      out.push(`<line x1="${fmt(x(open[i]!.t))}" x2="${fmt(x(open[i]!.t))}" y1="${T}" y2="${T + 8}" stroke="#8250df" stroke-width="1.5"/>`);
    }
  }

  for (const s of series.slice().reverse()) {
    if (s.data.length === 0) continue;
    out.push(`<path d="${path(s.data, s.pick, (v) => y(v / MB))}" fill="none" stroke="${s.color}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`);
  }
  const closed = rows.find((r) => r.phase === 'closed');
  if (closed !== undefined) {
    out.push(`<circle cx="${fmt(x(closed.t))}" cy="${fmt(y(closed.rss / MB))}" r="4" fill="#0969da"/>`);
    out.push(`<text x="${fmt(x(closed.t) + 8)}" y="${fmt(y(closed.rss / MB) + 4)}" fill="#0969da" font-size="11">closed</text>`);
    out.push(`<text x="${fmt(x(closed.t) + 8)}" y="${fmt(y(closed.rss / MB) + 17)}" fill="#0969da" font-size="11">${fmt(closed.rss / MB, 0)} MB</text>`);
  }
  const f = info.rssSlope.fit;
  out.push(`<line x1="${fmt(x(w0))}" y1="${fmt(y(f.intercept + f.slope * w0))}" x2="${fmt(x(w1))}" y2="${fmt(y(f.intercept + f.slope * w1))}" stroke="#cf222e" stroke-width="1.8" stroke-dasharray="6 4"/>`);

  // the strip: worker threads (left axis) and live vectors (right axis)
  const thrMax = Math.max(info.threads, ...open.map((r) => r.threads)) + 1;
  const vecTop = Math.max(1, ...open.map((r) => r.liveVectors));
  const vStep = niceStep(vecTop, 2);
  const vMax = Math.ceil(vecTop / vStep) * vStep;
  const yt = (n: number): number => T2 + ph2 - (n / thrMax) * ph2;
  const yv = (n: number): number => T2 + ph2 - (n / vMax) * ph2;
  out.push(`<rect x="${L}" y="${T2}" width="${pw}" height="${ph2}" fill="none" stroke="#444"/>`);
  const thrStep = Math.max(1, Math.ceil(thrMax / 4));
  for (let v = 0; v <= thrMax; v += thrStep) out.push(`<text x="${L - 8}" y="${fmt(yt(v) + 4)}" text-anchor="end" fill="#8250df">${v}</text>`);
  for (let v = 0; v <= vMax + 1e-9; v += vStep) out.push(`<text x="${L + pw + 8}" y="${fmt(yv(v) + 4)}" fill="#2b7a78">${v >= 1000 ? `${Number((v / 1000).toFixed(1))}k` : v}</text>`);
  out.push(`<line x1="${L}" x2="${L + pw}" y1="${fmt(yt(info.threads))}" y2="${fmt(yt(info.threads))}" stroke="#d8cdf5" stroke-dasharray="2 3"/>`);
  if (open.length > 0) {
    out.push(`<path d="${path(open, (s) => s.liveVectors, yv)}" fill="none" stroke="#2b7a78" stroke-width="1.4"/>`);
    out.push(`<path d="${path(open, (s) => s.threads, yt, true)}" fill="none" stroke="#8250df" stroke-width="2.2"/>`);
  }
  out.push(`<text x="${L + 6}" y="${T2 - 6}" fill="#8250df">worker threads (left, configured ${info.threads})</text>`);
  out.push(`<text x="${L + pw - 6}" y="${T2 - 6}" text-anchor="end" fill="#2b7a78">live vectors (right)</text>`);

  // phase markers across both panels, labels left of the line on their own rows
  const marker = (t: number, label: string, row: number): void => {
    out.push(`<line x1="${fmt(x(t))}" x2="${fmt(x(t))}" y1="${T}" y2="${T2 + ph2}" stroke="#777" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${fmt(x(t) - 4)}" y="${T + ph - 8 - row * 14}" text-anchor="end" fill="#555" font-size="11" ${HALO}>${esc(label)}</text>`);
  };
  marker(info.churnEnd, 'churn stops', 1);
  if (info.dropAt !== undefined) marker(info.dropAt, 'drop all', 0);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
