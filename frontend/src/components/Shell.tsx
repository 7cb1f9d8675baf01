import { useEffect, useState } from "preact/hooks";
import type { UserOut } from "../api/types";
import { notice } from "../state/auth";
import { route, tabOf } from "../state/router";
import { ChatView } from "./chat/ChatView";
import { Header } from "./Header";
import { NoticeBar } from "./NoticeBar";
import { Sidebar } from "./Sidebar";
import { ArtifactsTab } from "./tabs/ArtifactsTab";
import { ContextsTab } from "./tabs/ContextsTab";
import { ModelTab } from "./tabs/ModelTab";
import { SettingsTab } from "./tabs/SettingsTab";

export function Shell({ user }: { user: UserOut }) {
  const [drawer, setDrawer] = useState(false);
  const tab = tabOf(route.value) ?? "chat";

  useEffect(() => {
    if (!drawer) return undefined;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setDrawer(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [drawer]);

  useEffect(() => setDrawer(false), [route.value]);

  return (
    <div class={drawer ? "shell drawer-open" : "shell"}>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header user={user} tab={tab} drawerOpen={drawer} onToggleDrawer={() => setDrawer(!drawer)} />
      {(notice.value || !user.email_verified) && <NoticeBar user={user} />}
      <div class="body">
        <Sidebar />
        {drawer && <div class="scrim" onClick={() => setDrawer(false)} aria-hidden="true" />}
        <main id="main" class="main" tabIndex={-1}>
          <div id="tab-panel" class="tab-panel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
            {tab === "chat" && <ChatView />}
            {tab === "contexts" && <ContextsTab />}
            {tab === "artifacts" && <ArtifactsTab />}
            {tab === "settings" && <SettingsTab user={user} />}
            {tab === "model" && <ModelTab />}
          </div>
        </main>
      </div>
    </div>
  );
}
