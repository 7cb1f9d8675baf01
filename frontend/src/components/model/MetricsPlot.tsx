// Held-out loss and alignment across an adapter's versions: inline SVG drawn as JSX (presentation
// attributes only: the CSP forbids style attributes), with the numbers in a table for screen
// readers and anyone who prefers them.
import { type Box, formatValue, linePath, xScale, yScale } from "../../lib/plot";
import { metricSeries, type VersionMetrics } from "./metrics";

const BOX: Box = { width: 360, height: 180, left: 44, right: 12, top: 12, bottom: 28 };

function Chart({ rows, name, pick, cls }: { rows: VersionMetrics[]; name: string; pick: number; cls: string }) {
  const series = [metricSeries(rows)[pick]!];
  const x = xScale(series, BOX);
  const y = yScale(series, BOX);
  if (!x || !y) return <p class="muted small">{name}: no value recorded.</p>;
  const points = series[0]!.points.filter((p) => p.y != null);
  const label = `${name} by version: ${points.map((p) => `v${p.x} ${formatValue(p.y)}`).join(", ")}`;
  return (
    <figure class="plot">
      <svg viewBox={`0 0 ${BOX.width} ${BOX.height}`} role="img" aria-label={label} class={`plot-svg ${cls}`}>
        {y.ticks.map((t) => (
          <g key={`y${t}`} class="plot-grid">
            <line x1={BOX.left} x2={BOX.width - BOX.right} y1={y.at(t)} y2={y.at(t)} />
            <text x={BOX.left - 4} y={y.at(t) + 4} text-anchor="end">{formatValue(t)}</text>
          </g>
        ))}
        {x.ticks.map((t) => (
          <text key={`x${t}`} class="plot-axis" x={x.at(t)} y={BOX.height - 8} text-anchor="middle">v{t}</text>
        ))}
        <path class="plot-line" d={linePath(series[0]!.points, x.at, y.at)} fill="none" />
        {points.map((p) => (
          <circle key={p.x} class="plot-dot" cx={x.at(p.x)} cy={y.at(p.y!)} r="3" />
        ))}
      </svg>
      <figcaption class="small muted">{name}</figcaption>
    </figure>
  );
}

export function MetricsPlot({ rows }: { rows: VersionMetrics[] }) {
  const any = rows.some((r) => r.heldoutLoss != null || r.alignment != null);
  if (!any) return <p class="muted">No training metrics yet: a version trained on your feedback records its held-out loss and alignment.</p>;
  const sorted = [...rows].sort((a, b) => a.version - b.version);
  return (
    <div class="plots">
      <div class="plot-row">
        <Chart rows={sorted} name="Held-out loss" pick={0} cls="loss" />
        <Chart rows={sorted} name="Alignment" pick={1} cls="alignment" />
      </div>
      <table class="table small">
        <caption>Held-out loss and alignment per version</caption>
        <thead>
          <tr><th scope="col">Version</th><th scope="col">Held-out loss</th><th scope="col">Alignment</th><th scope="col">Held-out events</th><th scope="col">Train loss</th></tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.version}>
              <td>v{r.version}</td>
              <td>{formatValue(r.heldoutLoss)}</td>
              <td>{formatValue(r.alignment)}</td>
              <td>{r.heldoutEvents ?? "—"}</td>
              <td>{formatValue(r.trainLoss)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
