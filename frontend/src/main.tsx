import { render } from "preact";
import { App } from "./components/App";
import { bootstrap } from "./state/auth";
import { startRouter } from "./state/router";
import { initTheme } from "./state/theme";
import "./styles/base.css";
import "./styles/layout.css";
import "./styles/chat.css";
import "./styles/panels.css";
import "./styles/highlight.css";

initTheme();
startRouter();
void bootstrap();
render(<App />, document.getElementById("app")!);
