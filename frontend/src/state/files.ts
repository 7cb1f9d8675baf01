import { signal } from "@preact/signals";
import { api } from "../api/client";
import type { LimitsOut } from "../api/types";
import { onSignOut } from "./auth";

export const limits = signal<LimitsOut | null>(null);
let pending: Promise<LimitsOut> | null = null;

/** GET /v1/files/limits, once per session. */
export function loadLimits(): Promise<LimitsOut> {
  if (limits.value) return Promise.resolve(limits.value);
  pending ??= api
    .get("/v1/files/limits")
    .then((l) => {
      limits.value = l;
      return l;
    })
    .finally(() => {
      pending = null;
    });
  return pending;
}

onSignOut(() => {
  limits.value = null;
});
