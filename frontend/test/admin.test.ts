// The admin console's parts in a DOM with a fake API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { auditSection, chainText } from "../admin/audit";
import { gauge, jobCounts } from "../admin/training";
import { usersSection } from "../admin/users";
import { ok } from "./helpers";

const flush = () => new Promise((r) => setTimeout(r, 0));
afterEach(() => vi.unstubAllGlobals());

describe("admin console", () => {
  it("reads job counts and gauges from the metrics text", () => {
    const text = '# HELP training_jobs x\ntraining_jobs{status="queued"} 2.0\ntraining_jobs{status="failed"} 0.0\ntraining_job_last_loss 0.41\ntraining_job_last_finished_timestamp_seconds NaN\n';
    expect(jobCounts(text)).toEqual({ queued: 2, failed: 0 });
    expect(gauge(text, "training_job_last_loss")).toBe(0.41);
    expect(gauge(text, "training_job_last_finished_timestamp_seconds")).toBeNull();
  });

  it("says whether the audit chain holds", () => {
    expect(chainText({ ok: true, checked: 12, first_broken_id: null })).toBe("Chain intact: 12 events checked.");
    expect(chainText({ ok: false, checked: 3, first_broken_id: 4 })).toContain("BROKEN at event 4");
  });

  it("lists users as text and disables one", async () => {
    const calls: string[] = [];
    const user = { id: "u1", email: "<b>eve</b>@example.test", handle: null, role: "user", created_at: "t", email_verified: true, mfa_enabled: false, is_active: true };
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method} ${input} ${init.body ?? ""}`);
      if (init.method === "PATCH") return ok({ ...user, is_active: false });
      return ok({ items: [user], next_cursor: null });
    }));
    const section = usersSection();
    document.body.append(section);
    await flush();
    expect(section.querySelector("b")).toBeNull();
    expect(section.textContent).toContain("<b>eve</b>@example.test");
    const disable = [...section.querySelectorAll("button")].find((b) => b.textContent?.startsWith("Disable"))!;
    disable.click();
    await flush();
    expect(calls.filter((c) => c.startsWith("PATCH"))).toEqual(['PATCH /v1/admin/users/u1 {"is_active":false}']);
    expect(section.textContent).toContain("disabled");
    section.remove();
  });

  it("checks the chain on request", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) =>
      input.startsWith("/v1/admin/audit/verify") ? ok({ ok: true, checked: 5, first_broken_id: null })
        : ok({ items: [{ id: 1, occurred_at: "t", event: "login", actor_user_id: null, subject_user_id: null, ip_addr: null, details: { x: "<i>" } }], next_cursor: null })));
    const section = auditSection();
    document.body.append(section);
    await flush();
    expect(section.querySelector("i")).toBeNull();
    (section.querySelector("#verify") as HTMLButtonElement).click();
    await flush();
    expect(section.querySelector("#chain")?.textContent).toBe("Chain intact: 5 events checked.");
    section.remove();
  });
});
