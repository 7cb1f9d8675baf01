// Leaving the app for another address (a data export's zip, served by the object store under a
// signed URL). One seam, so the tests can see where the page would go without jsdom navigating.

/** An absolute http(s) URL, or null: never a `javascript:` or `data:` address. */
export function safeWebUrl(raw: string, base: string = window.location.href): string | null {
  try {
    const url = new URL(raw, base);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

export const leavePage = {
  /** Sends the browser to `url`; a zip (Content-Disposition: attachment) downloads and the app stays. */
  to(url: string): void {
    window.location.assign(url);
  },
};
