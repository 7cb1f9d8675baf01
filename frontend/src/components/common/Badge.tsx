export function Badge({ kind, value }: { kind: string; value: string | null | undefined }) {
  if (!value) return null;
  const tone = value.split(".")[0]!.replace(/[^a-z_-]/gi, "").toLowerCase();
  return <span class={`badge ${kind}-badge tone-${tone}`}>{value}</span>;
}

export function Progress({ step, total, label }: { step: number | null | undefined; total: number | null | undefined; label: string }) {
  if (step == null || total == null || total <= 0) return <span class="muted">no progress reported</span>;
  const pct = Math.round((Math.min(step, total) / total) * 100);
  return (
    <span class="progress-wrap">
      <progress value={Math.min(step, total)} max={total} aria-label={label} />
      <span class="muted">
        {step}/{total} ({pct} %)
      </span>
    </span>
  );
}
