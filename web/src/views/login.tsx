/** Asks for an API key, checks it against an admin route, and keeps it for this tab only. */
import { useState } from 'preact/hooks';
import { api, ApiError, rememberKey } from '../api.ts';

export function Login({ onLogin, expired }: { onLogin: (key: string) => void; expired: boolean }) {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState<string | undefined>(expired ? 'The engine no longer accepts the key; log in again.' : undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const candidate = key.trim();
    if (candidate === '') {
      setProblem('Enter an API key.');
      return;
    }
    setBusy(true);
    setProblem(undefined);
    try {
      // Any admin route answers 401 for a wrong key and 403 for a key without the admin scope.
      await api('/admin/messages?limit=1', { key: candidate });
      rememberKey(candidate);
      onLogin(candidate);
    } catch (error) {
      setProblem(
        error instanceof ApiError && error.status === 401
          ? 'The engine does not know this key.'
          : error instanceof ApiError && error.status === 403
            ? 'This key lacks the admin scope the console needs.'
            : `The engine could not be reached (${(error as Error).message}).`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="login">
      <form class="login-card" onSubmit={submit} data-testid="login-form">
        <div class="brand brand-large">
          <span class="brand-mark" aria-hidden="true">◆</span>
          <span>anchorline</span>
        </div>
        <h1>Operator console</h1>
        <p class="muted">
          Log in with an API key that has the <code>admin</code> scope. The key is kept in this browser tab only and sent as a bearer token with every request.
        </p>
        <label class="field">
          <span>API key</span>
          <input
            type="password"
            autoComplete="off"
            spellcheck={false}
            value={key}
            onInput={(event) => setKey((event.target as HTMLInputElement).value)}
            data-testid="login-key"
            autoFocus
            aria-describedby={problem ? 'login-problem' : undefined}
          />
        </label>
        {problem ? (
          <div class="note note-error" id="login-problem" role="alert" data-testid="login-error">
            {problem}
          </div>
        ) : null}
        <button type="submit" class="button button-primary" disabled={busy} data-testid="login-submit">
          {busy ? 'Checking…' : 'Log in'}
        </button>
      </form>
    </div>
  );
}
