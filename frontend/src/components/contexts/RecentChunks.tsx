// A preview of the context's passages (GET /v1/contexts/{id}/chunks), read again when `version`
// changes (a file ingested or detached).
import { api } from "../../api/client";
import { useLoad } from "../../lib/useLoad";
import { Empty, ErrorNote, Loading } from "../common/Status";

export function RecentChunks({ contextId, version }: { contextId: string; version: number }) {
  const chunks = useLoad(() => api.get("/v1/contexts/{id}/chunks", { path: { id: contextId }, query: { limit: 5 } }), [contextId, version]);
  return (
    <section aria-labelledby="recent-chunks-title">
      <h3 id="recent-chunks-title">Recent chunks</h3>
      {chunks.loading && !chunks.data && <Loading />}
      <ErrorNote message={chunks.error} onRetry={chunks.reload} />
      {chunks.data && chunks.data.items.length === 0 && <Empty>No chunks yet: attach or upload a file into this context.</Empty>}
      {chunks.data?.items.map((c, i) => (
        <blockquote key={String(c["id"] ?? i)} class="snippet small">{String(c["content"] ?? "")}</blockquote>
      ))}
    </section>
  );
}
