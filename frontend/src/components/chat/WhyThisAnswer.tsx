// The turn's routing and workflow, in words first and then as JSON: which adapters shaped the
// answer (gate weight, how, version), which it went without (the model service refused them, or
// the request could not carry them), the policy's decision, each workflow node.
import type { AppliedAdapter, SkippedAdapter, TurnTrace } from "../../api/events";
import { pretty, shortId } from "../../lib/format";
import type { ChatMessage } from "../../state/messages";

function AdapterRows({ adapters, title }: { adapters: AppliedAdapter[]; title: string }) {
  if (adapters.length === 0) return <p class="small muted">{title}: none (the base model answered).</p>;
  return (
    <table class="table small">
      <caption>{title}</caption>
      <thead>
        <tr><th scope="col">Adapter</th><th scope="col">Gate</th><th scope="col">How</th><th scope="col">Version</th></tr>
      </thead>
      <tbody>
        {adapters.map((a) => (
          <tr key={a.id}>
            <td class="monospace" title={a.id}>{shortId(a.id)}</td>
            <td>{a.weight != null ? a.weight.toFixed(2) : "—"}</td>
            <td>{a.how ?? (a as { mode?: string }).mode ?? "—"}</td>
            <td>{a.version ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const SKIP_REASONS: Record<string, string> = {
  not_found: "it no longer exists",
  files_missing: "its files are missing",
  checksum_mismatch: "its files failed their checksum",
  refused: "the model service could not use it",
  mode_incompatible: "the model backend cannot run this kind of adapter",
  max_adapters: "the model backend takes fewer adapters at once, and the stronger ones were used",
  no_remote_id: "it has no model or adapter id at this provider",
  no_prompt_instructions: "it has no instructions yet",
};

function SkippedRows({ skipped }: { skipped: SkippedAdapter[] }) {
  if (skipped.length === 0) return null;
  return (
    <div class="small" role="note">
      <p>This answer came without {skipped.length === 1 ? "an adapter" : `${skipped.length} adapters`} the router chose:</p>
      <ul>
        {skipped.map((s) => (
          <li key={s.id}>
            <span class="monospace" title={s.id}>{shortId(s.id)}</span>
            {s.version != null && <> v{s.version}</>}: {SKIP_REASONS[s.reason] ?? s.reason}
            {s.fallback === "prompt" && <> (its instructions were still used)</>}
          </li>
        ))}
      </ul>
    </div>
  );
}

function TraceSummary({ trace }: { trace: TurnTrace }) {
  const nodes = trace.workflow ?? [];
  return (
    <>
      <p class="small">
        Policy <strong>{trace.router?.policy ?? "—"}</strong>
        {trace.workflow_outcome && <> · workflow {trace.workflow_outcome}</>}
        {trace.finish_reason && <> · finished: {trace.finish_reason}</>}
        {trace.kernel_ms != null && <> · {Math.round(trace.kernel_ms)} ms</>}
      </p>
      {trace.router?.adapters && <AdapterRows adapters={trace.router.adapters} title="Adapters the router chose" />}
      {nodes.length > 0 && (
        <ol class="small node-list">
          {nodes.map((n, i) => (
            <li key={`${n.node}-${i}`}>
              <span class="monospace">{n.node}</span> {n.tool && <>({n.tool})</>} {n.outcome ?? ""}
              {n.latency_ms != null && <span class="muted"> · {Math.round(n.latency_ms)} ms</span>}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

export function WhyThisAnswer({ message }: { message: ChatMessage }) {
  const trace = message.trace;
  return (
    <details class="why">
      <summary>Why this answer</summary>
      <AdapterRows adapters={message.adapters} title="Adapters applied" />
      <SkippedRows skipped={message.adaptersSkipped} />
      {trace ? <TraceSummary trace={trace} /> : <p class="small muted">No trace was stored with this answer.</p>}
      {trace && (
        <details>
          <summary class="small">Full trace (JSON)</summary>
          <pre class="code-block small">{pretty(trace)}</pre>
        </details>
      )}
    </details>
  );
}
