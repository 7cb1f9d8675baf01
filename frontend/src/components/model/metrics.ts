// What a persona version's recorded metrics say (functions/train/job.py `_metrics`):
// heldout.{events, new: {loss, alignment}, current: {…}}, train.{loss, steps, samples}.
import type { components } from "../../api/schema";
import type { Series } from "../../lib/plot";

export type AdapterVersion = components["schemas"]["VersionOut"];

const obj = (v: unknown): Record<string, unknown> | null =>
  v != null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export interface VersionMetrics {
  version: number;
  heldoutLoss: number | null;
  alignment: number | null;
  heldoutEvents: number | null;
  trainLoss: number | null;
  trainSamples: number | null;
}

export function versionMetrics(v: Pick<AdapterVersion, "version" | "metrics">): VersionMetrics {
  const m = obj(v.metrics);
  const heldout = obj(m?.heldout);
  const fresh = obj(heldout?.new);
  const train = obj(m?.train);
  return {
    version: v.version,
    heldoutLoss: num(fresh?.loss),
    alignment: num(fresh?.alignment),
    heldoutEvents: num(heldout?.events),
    trainLoss: num(train?.loss),
    trainSamples: num(train?.samples),
  };
}

/** The plot's two series over the versions, oldest first. */
export function metricSeries(rows: readonly VersionMetrics[]): Series[] {
  const sorted = [...rows].sort((a, b) => a.version - b.version);
  return [
    { name: "Held-out loss", points: sorted.map((r) => ({ x: r.version, y: r.heldoutLoss })) },
    { name: "Alignment", points: sorted.map((r) => ({ x: r.version, y: r.alignment })) },
  ];
}
