import { auth } from "../state/auth";
import { route } from "../state/router";
import { AuthPanel } from "./auth/AuthPanel";
import { ResetPassword } from "./auth/ResetPassword";
import { VerifyEmail } from "./auth/VerifyEmail";
import { Loading } from "./common/Status";
import { Shell } from "./Shell";

export function App() {
  const r = route.value;
  if (r.name === "verify-email") return <VerifyEmail token={r.token} />;
  if (r.name === "reset-password") return <ResetPassword token={r.token} />;
  const state = auth.value;
  switch (state.status) {
    case "loading":
      return (
        <main class="centered">
          <Loading />
        </main>
      );
    case "anonymous":
    case "mfa":
      return <AuthPanel />;
    case "signed-in":
      return <Shell user={state.user} />;
  }
}
