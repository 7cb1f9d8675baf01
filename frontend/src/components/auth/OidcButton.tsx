import { useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { oidcProvider, startOidcLogin } from "../../state/oidc";

/** "Continue with <provider>" when the API has an OIDC provider configured; nothing otherwise. */
export function OidcButton({ disabled = false }: { disabled?: boolean }) {
  const provider = oidcProvider.value;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!provider) return null;

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      await startOidcLogin(provider.name); // the page leaves for the provider
    } catch (err) {
      setError(userMessage(err));
      setBusy(false);
    }
  };

  return (
    <div class="oidc-login mb-14">
      <hr class="divider" />
      <button type="button" class="wide" disabled={disabled || busy} onClick={() => void start()}>
        Continue with {provider.label}
      </button>
      {error && <p class="error-note" role="alert">{error}</p>}
    </div>
  );
}
