/*
 * Line charts as standalone SVG: search progress plots (reward, entropy, accuracy against steps)
 * and comparison reports (best-so-far against trials or time, with a shaded spread); series drawn
 * as labelled points make scatter plots (the ranking benchmark's shared vs stand-alone scores).
 */

export interface ChartPoint {
  x: number;
  y: number;
  /** Written beside the point in a 'points' series. */
  label?: string;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  /** Optional spread drawn as a shaded band behind the line (e.g. mean ± std). */
  band?: { x: number; low: number; high: number }[];
  /** 'line' (default) joins the points; 'points' draws each as a dot, for scatter plots. */
  style?: 'line' | 'points';
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  width?: number;
  height?: number;
  /** Fixed y range; by default the data's range with a small margin. */
  yRange?: [number, number];
  /** Log-scale x axis (for steps spanning decades). */
  logX?: boolean;
}

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `count` round tick values covering [low, high]. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const formatTick = (value: number): string =>
  Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0) ? value.toExponential(1) : String(Number(value.toPrecision(4)));

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  const margin = { left: 70, right: 20, top: 40, bottom: 55 + 18 * Math.ceil(options.series.length / 3) };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xs = options.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = options.series.flatMap((s) => [
    ...s.points.map((p) => p.y),
    ...(s.band ?? []).flatMap((b) => [b.low, b.high]),
  ]);
  const finite = (values: number[]) => values.filter(Number.isFinite);
  const fx = finite(xs);
  const fy = finite(ys);
  const xScaleOf = (v: number) => (options.logX ? Math.log10(Math.max(v, 1e-12)) : v);
  let [x0, x1] = fx.length ? [Math.min(...fx.map(xScaleOf)), Math.max(...fx.map(xScaleOf))] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  // Dots at the extremes would sit on the frame: scatter plots get the same margin as y.
  if (options.series.some((s) => s.style === 'points') && !options.logX) [x0, x1] = [x0 - (x1 - x0) * 0.05, x1 + (x1 - x0) * 0.05];
  let [y0, y1] = options.yRange ?? (fy.length ? [Math.min(...fy), Math.max(...fy)] : [0, 1]);
  if (!options.yRange) {
    const pad = (y1 - y0) * 0.05 || Math.abs(y0) * 0.05 || 1;
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  const px = (x: number) => margin.left + ((xScaleOf(x) - x0) / (x1 - x0)) * plotW;
  const py = (y: number) => margin.top + (1 - (y - y0) / (y1 - y0)) * plotH;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" font-size="15" font-weight="bold" text-anchor="middle">${escapeXml(options.title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e7eb"/>`,
      `<text x="${margin.left - 6}" y="${py(t) + 4}" text-anchor="end">${formatTick(t)}</text>`,
    );
  }
  const xTicks = options.logX
    ? niceTicks(x0, x1).filter(Number.isInteger).map((e) => 10 ** e)
    : niceTicks(x0, x1);
  for (const t of xTicks) {
    parts.push(
      `<line x1="${px(t)}" x2="${px(t)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f3f4f6"/>`,
      `<text x="${px(t)}" y="${margin.top + plotH + 16}" text-anchor="middle">${formatTick(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${margin.top + plotH + 36}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
    `<clipPath id="plot"><rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}"/></clipPath>`,
  );
  options.series.forEach((series, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const band = (series.band ?? []).filter((b) => Number.isFinite(b.low) && Number.isFinite(b.high));
    if (band.length > 1) {
      const upper = band.map((b) => `${px(b.x)},${py(b.high)}`);
      const lower = band.map((b) => `${px(b.x)},${py(b.low)}`).reverse();
      parts.push(`<polygon clip-path="url(#plot)" points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15"/>`);
    }
    const points = series.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (series.style === 'points')
      for (const p of points)
        parts.push(
          `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="4" fill="${color}" fill-opacity="0.8"/>`,
          ...(p.label === undefined ? [] : [`<text x="${px(p.x) + 6}" y="${py(p.y) - 5}" font-size="10" fill="#374151">${escapeXml(p.label)}</text>`]),
        );
    else if (points.length === 1)
      parts.push(`<circle cx="${px(points[0]!.x)}" cy="${py(points[0]!.y)}" r="3" fill="${color}"/>`);
    else if (points.length > 1)
      parts.push(
        `<polyline clip-path="url(#plot)" points="${points.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.8"/>`,
      );
    const lx = margin.left + (i % 3) * (plotW / 3);
    const ly = margin.top + plotH + 52 + Math.floor(i / 3) * 18;
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${color}"/>`,
      `<text x="${lx + 20}" y="${ly}">${escapeXml(series.name)}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}
