// After `vite build`: the contract with the gateway (which serves dist/ with a strict CSP and
// guards /admin/ for admins only).
//  - dist/index.html and dist/admin/index.html exist;
//  - no HTML page has an inline <script> or a style attribute/element (CSP: 'self' only);
//  - everything the admin page references lives under /admin/;
//  - nothing the app references lives under /admin/, and no app asset holds admin code.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
/** @type {string[]} */
const problems = [];

/** @param {string} dir @returns {string[]} */
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** @param {string} html @returns {string[]} */
function refs(html) {
  return [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? "");
}

for (const page of ["index.html", "admin/index.html"]) {
  const path = join(dist, page);
  if (!existsSync(path)) {
    problems.push(`missing dist/${page}`);
    continue;
  }
  const html = readFileSync(path, "utf8");
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
    if (!/\bsrc=/.test(m[1]) || m[2].trim() !== "") problems.push(`${page}: inline <script>`);
  }
  if (/<style\b/i.test(html)) problems.push(`${page}: inline <style>`);
  if (/\sstyle="/i.test(html)) problems.push(`${page}: style attribute`);
  const local = refs(html).filter((r) => r.startsWith("/") && !r.startsWith("//"));
  const admin = page.startsWith("admin/");
  for (const r of local) {
    if (admin && !r.startsWith("/admin/") && r !== "/") problems.push(`${page}: references ${r} outside /admin/`);
    if (!admin && r.startsWith("/admin/")) problems.push(`${page}: references admin asset ${r}`);
  }
  if (/https?:\/\/(?!www\.w3\.org)/.test(html.replace(/<!--[\s\S]*?-->/g, ""))) problems.push(`${page}: absolute URL (CDN?)`);
}

for (const file of walk(dist)) {
  const rel = relative(dist, file);
  if (rel.startsWith("admin/") || !/\.(js|css)$/.test(rel)) continue;
  const text = readFileSync(file, "utf8");
  if (text.includes("/v1/admin/")) problems.push(`${rel}: app asset contains admin code`);
}

if (problems.length > 0) {
  console.error("dist check failed:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log("dist check: ok (app and admin assets separate, no inline scripts or styles)");
