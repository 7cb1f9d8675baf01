// An artifact's versions (`GET /v1/artifacts/{id}/versions`), typed by the generated schema.
import { api } from "../../api/client";
import type { components } from "../../api/schema";

export type ArtifactVersion = components["schemas"]["ArtifactVersionOut"];
export type ArtifactVersionPage = components["schemas"]["ArtifactVersionPage"];

export function artifactVersions(id: string, cursor: string | null = null): Promise<ArtifactVersionPage> {
  return api.get("/v1/artifacts/{id}/versions", { path: { id }, query: { limit: 50, cursor } });
}
