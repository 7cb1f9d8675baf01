// The scaling behind the "Your model" plot (inline SVG drawn as JSX, no chart library): metric
// values per adapter version mapped into a box, with "nice" round ticks.

export interface Point {
  x: number;
  y: number | null;
}
export interface Series {
  name: string;
  points: Point[];
}
export interface Box {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}
export interface Scale {
  min: number;
  max: number;
  /** The value's coordinate. */
  at: (value: number) => number;
  ticks: number[];
}

/** A linear scale from [min, max] onto [from, to]; a flat domain is widened so nothing divides by 0. */
export function linearScale(min: number, max: number, from: number, to: number): (v: number) => number {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const k = (to - from) / (max - min);
  return (v) => from + (v - min) * k;
}

/** About `count` round ticks covering [min, max] (steps of 1, 2 or 5 × 10^n). */
export function niceTicks(min: number, max: number, count = 4): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(min / step) * step;
  const last = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = first; v <= last + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** The y scale of every series together (their finite values), with its ticks; null if none. */
export function yScale(series: readonly Series[], box: Box): Scale | null {
  const values = series.flatMap((s) => s.points.map((p) => p.y)).filter((v): v is number => v != null && Number.isFinite(v));
  if (values.length === 0) return null;
  const ticks = niceTicks(Math.min(...values), Math.max(...values));
  const min = ticks[0]!;
  const max = ticks[ticks.length - 1]!;
  return { min, max, ticks, at: linearScale(min, max, box.height - box.bottom, box.top) };
}

/** The x scale over the versions (evenly spaced, one tick per version); null if none. */
export function xScale(series: readonly Series[], box: Box): Scale | null {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const min = xs[0]!;
  const max = xs[xs.length - 1]!;
  const left = box.left;
  const right = box.width - box.right;
  const at = xs.length === 1 ? () => (left + right) / 2 : linearScale(min, max, left, right);
  return { min, max, ticks: xs, at };
}

/** The SVG path of one series: a line through its points in x order, broken where y is missing. */
export function linePath(points: readonly Point[], x: (v: number) => number, y: (v: number) => number): string {
  let d = "";
  let pen = false;
  for (const p of [...points].sort((a, b) => a.x - b.x)) {
    if (p.y == null || !Number.isFinite(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${round(x(p.x))} ${round(y(p.y))}`;
    pen = true;
  }
  return d;
}

const round = (v: number) => Math.round(v * 10) / 10;

/** A number for a label: 4 significant digits, no trailing zeros. */
export function formatValue(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return "—";
  return String(Number(v.toPrecision(4)));
}
