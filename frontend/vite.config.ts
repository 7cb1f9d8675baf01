/// <reference types="vitest/config" />
// The app (index.html) and the admin page (admin/index.html) are two entries of one build.
// Every file the admin page uses is written under dist/admin/ (the gateway serves /admin/ to
// admins only), and the app's files under dist/assets/ never contain admin code: the two
// entries share no module (scripts/check-dist.mjs checks both after each build).
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

const here = import.meta.dirname;
const API = process.env.API_ORIGIN ?? "http://127.0.0.1:8080";

function isAdmin(names: readonly string[] | undefined, facade?: string | null): boolean {
  const all = [...(names ?? []), facade ?? ""];
  return all.some((n) => n === "admin" || n.includes("/admin/") || n.startsWith("admin/"));
}

const ADMIN_COPY = "?admin-copy";

/** The admin page may reuse small modules of the app's src/lib/ (the dialogs' focus trap): an
 *  import of one from admin/ (or from such a copy) resolves to the admin's own copy of the module
 *  (the same file under another id), compiled into the admin bundle, so the two entries still
 *  share no chunk. */
function adminOwnCopies(): Plugin {
  return {
    name: "admin-own-copies",
    enforce: "pre",
    async resolveId(source, importer, options) {
      if (!importer || !(importer.includes("/admin/") || importer.endsWith(ADMIN_COPY))) return null;
      const resolved = await this.resolve(source, importer, { ...options, skipSelf: true });
      if (!resolved || resolved.external || resolved.id.includes("?") || !resolved.id.includes("/src/lib/")) return resolved;
      return { ...resolved, id: resolved.id + ADMIN_COPY };
    },
  };
}

export default defineConfig({
  plugins: [adminOwnCopies()],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    // The polyfill would be one module shared by both entries (a chunk outside dist/admin/).
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: {
      input: {
        main: resolve(here, "index.html"),
        admin: resolve(here, "admin/index.html"),
      },
      output: {
        entryFileNames: (chunk) =>
          isAdmin([chunk.name], chunk.facadeModuleId) ? "admin/assets/[name]-[hash].js" : "assets/[name]-[hash].js",
        chunkFileNames: (chunk) =>
          chunk.moduleIds.some((id) => id.includes("/admin/")) ? "admin/assets/[name]-[hash].js" : "assets/[name]-[hash].js",
        assetFileNames: (asset) =>
          isAdmin(asset.originalFileNames) || isAdmin(asset.names) ? "admin/assets/[name]-[hash][extname]" : "assets/[name]-[hash][extname]",
      },
    },
  },
  server: {
    proxy: {
      "/v1/chat/stream": { target: API.replace(/^http/, "ws"), ws: true },
      "/v1": { target: API },
      "/healthz": { target: API },
    },
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    restoreMocks: true,
  },
});
