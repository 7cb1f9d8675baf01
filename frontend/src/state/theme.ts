// Light and dark: the system's preference until the user picks one (remembered locally).
import { signal } from "@preact/signals";

export type Theme = "light" | "dark";
const KEY = "adaptive.theme";

function systemTheme(): Theme {
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function saved(): Theme | null {
  try {
    const value = window.localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : null;
  } catch {
    return null;
  }
}

export const theme = signal<Theme>("light");

export function applyTheme(value: Theme): void {
  theme.value = value;
  document.documentElement.dataset["theme"] = value;
}

export function initTheme(): void {
  applyTheme(saved() ?? systemTheme());
  window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (saved() === null) applyTheme(systemTheme());
  });
}

export function toggleTheme(): void {
  const next: Theme = theme.value === "dark" ? "light" : "dark";
  try {
    window.localStorage.setItem(KEY, next);
  } catch {
    // not remembered; still applied
  }
  applyTheme(next);
}
