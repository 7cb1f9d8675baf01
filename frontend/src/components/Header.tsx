import type { UserOut } from "../api/types";
import { logOut } from "../state/auth";
import { activeId } from "../state/chat";
import { navigate, TAB_PATHS, type TabName } from "../state/router";
import { theme, toggleTheme } from "../state/theme";

const TABS: { name: TabName; label: string }[] = [
  { name: "chat", label: "Chat" },
  { name: "contexts", label: "Contexts" },
  { name: "artifacts", label: "Artifacts" },
  { name: "settings", label: "Settings" },
  { name: "model", label: "Your model" },
];

/** The Chat tab goes back to the conversation that was open. */
function pathFor(name: TabName): string {
  return name === "chat" && activeId.value ? `/c/${activeId.value}` : TAB_PATHS[name];
}

interface Props {
  user: UserOut;
  tab: TabName;
  drawerOpen: boolean;
  onToggleDrawer: () => void;
}

export function Header({ user, tab, drawerOpen, onToggleDrawer }: Props) {
  // Arrow keys move between tabs (and select them); Home/End jump to the ends.
  const onKeyDown = (e: KeyboardEvent) => {
    const at = TABS.findIndex((t) => t.name === tab);
    let next = -1;
    if (e.key === "ArrowRight") next = (at + 1) % TABS.length;
    else if (e.key === "ArrowLeft") next = (at - 1 + TABS.length) % TABS.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = TABS.length - 1;
    if (next < 0) return;
    e.preventDefault();
    const target = TABS[next]!;
    navigate(pathFor(target.name));
    document.getElementById(`tab-${target.name}`)?.focus();
  };
  const dark = theme.value === "dark";

  return (
    <header class="app-header">
      <button
        type="button"
        class="drawer-toggle"
        aria-expanded={drawerOpen}
        aria-controls="sidebar"
        onClick={onToggleDrawer}
      >
        Conversations
      </button>
      <span class="brand">Adaptive Chat</span>
      <div class="tabs" role="tablist" aria-label="Sections" onKeyDown={onKeyDown}>
        {TABS.map((t) => (
          <button
            key={t.name}
            type="button"
            role="tab"
            id={`tab-${t.name}`}
            aria-selected={t.name === tab}
            aria-controls="tab-panel"
            tabIndex={t.name === tab ? 0 : -1}
            class="tab"
            onClick={() => navigate(pathFor(t.name))}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div class="header-end">
        <button type="button" class="ghost" onClick={toggleTheme} aria-pressed={dark} title="Toggle dark theme">
          Dark theme
        </button>
        <span class="user-email" title={user.email}>
          {user.email}
        </span>
        <button type="button" class="ghost" onClick={() => void logOut()}>
          Log out
        </button>
      </div>
    </header>
  );
}
