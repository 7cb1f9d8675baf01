// The "MFA code" field: a TOTP from the authenticator app or a recovery code (login's MFA step
// and the settings' enrolment and disable).
export function CodeField({ value, onInput, autoFocus = false }: {
  value: string;
  onInput: (v: string) => void;
  autoFocus?: boolean;
}) {
  return (
    <label class="field">
      <span>MFA code</span>
      <input
        inputMode="numeric"
        autocomplete="one-time-code"
        required
        minLength={6}
        maxLength={32}
        value={value}
        onInput={(e) => onInput(e.currentTarget.value)}
        autoFocus={autoFocus}
      />
    </label>
  );
}
