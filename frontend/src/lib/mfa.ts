// MFA enrolment helpers: the QR code as an image (never as markup in the page), codes as typed,
// and copying the recovery codes.

/** `qr_svg` from POST /v1/auth/mfa/enable as a `data:` URL for an <img> (CSP allows img-src
 * data:). An SVG shown as an image runs no script and loads nothing; markup is never put into
 * the document. Null for anything that is not an SVG document. */
export function svgDataUrl(svg: string | null | undefined): string | null {
  if (!svg) return null;
  const text = svg.trim();
  if (/^data:image\/svg\+xml[;,]/i.test(text)) return text;
  if (!/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]/i.test(text)) return null;
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
}

/** A code as the user typed it, without the spaces an authenticator app shows ("123 456"). */
export function normalizeCode(code: string): string {
  return code.replace(/\s+/g, "");
}

/** The recovery codes as the clipboard gets them: one a line. */
export function recoveryText(codes: readonly string[]): string {
  return `${codes.join("\n")}\n`;
}

/** Copies `text`: the Clipboard API where the page may use it, else a selected textarea. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // not allowed here (no focus, an insecure origin): try the older way
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.appendChild(area);
  area.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  } finally {
    area.remove();
  }
}
