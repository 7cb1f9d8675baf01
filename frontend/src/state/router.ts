// Routing by pathname (the gateway answers every app path with index.html). The mails' links
// carry their token in the fragment (never sent to a server): /verify-email#token=…,
// /reset-password#token=…; the token is read once and dropped from the address bar.
import { signal } from "@preact/signals";

export type TabName = "chat" | "contexts" | "artifacts" | "settings" | "model";

export type Route =
  | { name: "chat"; conversationId: string | null }
  | { name: "contexts" | "artifacts" | "settings" | "model" }
  | { name: "verify-email"; token: string | null }
  | { name: "reset-password"; token: string | null };

export const TAB_PATHS: Record<TabName, string> = {
  chat: "/",
  contexts: "/contexts",
  artifacts: "/artifacts",
  settings: "/settings",
  model: "/model",
};

function tokenFrom(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  return params.get("token");
}

export function parseRoute(pathname: string, hash = ""): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/verify-email") return { name: "verify-email", token: tokenFrom(hash) };
  if (path === "/reset-password") return { name: "reset-password", token: tokenFrom(hash) };
  const conversation = /^\/c\/([0-9a-fA-F-]{36})$/.exec(path);
  if (conversation) return { name: "chat", conversationId: conversation[1]!.toLowerCase() };
  switch (path) {
    case "/contexts":
      return { name: "contexts" };
    case "/artifacts":
      return { name: "artifacts" };
    case "/settings":
      return { name: "settings" };
    case "/model":
      return { name: "model" };
    default:
      return { name: "chat", conversationId: null };
  }
}

export function tabOf(route: Route): TabName | null {
  switch (route.name) {
    case "chat":
    case "contexts":
    case "artifacts":
    case "settings":
    case "model":
      return route.name;
    default:
      return null;
  }
}

export const route = signal<Route>(
  typeof window === "undefined" ? { name: "chat", conversationId: null } : parseRoute(window.location.pathname, window.location.hash),
);

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, "", path);
  else if (`${window.location.pathname}${window.location.hash}` !== path) window.history.pushState(null, "", path);
  route.value = parseRoute(window.location.pathname, window.location.hash);
}

export function startRouter(): void {
  // A token in the fragment is kept in memory only.
  if (window.location.hash.includes("token=")) {
    window.history.replaceState(null, "", window.location.pathname);
  }
  window.addEventListener("popstate", () => {
    route.value = parseRoute(window.location.pathname, window.location.hash);
  });
}
