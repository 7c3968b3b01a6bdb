/**
 * The patient portal's frame: the sign-in page until the person has tokens, the callback that completes a sign-in,
 * then who they are (GET /me) and three views of their records: the records themselves, their consents, and who
 * looked at them.
 */
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, Note } from '../src/components.tsx';
import { onSignedOut, portalJson } from './api.ts';
import { beginSignIn, completeSignIn, signOut, storedTokens } from './session.ts';
import { MyRecords } from './records.tsx';
import { MyConsents } from './consents.tsx';
import { WhoLooked } from './accesses.tsx';
import type { Me } from './me.ts';

const VIEWS = [
  { hash: '#records', label: 'My records' },
  { hash: '#consents', label: 'My consents' },
  { hash: '#access', label: 'Who looked at my record' },
] as const;

type Stage = { kind: 'signed-out'; note?: string } | { kind: 'completing' } | { kind: 'signed-in' };

export function Portal() {
  const [stage, setStage] = useState<Stage>(() => (location.pathname === '/portal/callback' ? { kind: 'completing' } : storedTokens() ? { kind: 'signed-in' } : { kind: 'signed-out' }));
  const [error, setError] = useState<unknown>();

  useEffect(() => onSignedOut(() => setStage({ kind: 'signed-out', note: 'You were signed out. Please sign in again.' })), []);

  useEffect(() => {
    if (stage.kind !== 'completing') return;
    const params = new URLSearchParams(location.search);
    // The code and state leave the address bar (and the history) whatever happens next.
    history.replaceState(null, '', '/portal/');
    completeSignIn(params).then(
      () => setStage({ kind: 'signed-in' }),
      (caught: unknown) => {
        setError(caught);
        setStage({ kind: 'signed-out' });
      },
    );
  }, [stage.kind]);

  if (stage.kind === 'completing') {
    return (
      <main class="portal-page" id="main">
        <p role="status" data-testid="signing-in">Signing you in…</p>
      </main>
    );
  }
  if (stage.kind === 'signed-out') {
    return (
      <SignIn
        note={stage.note}
        error={error}
        onError={setError}
      />
    );
  }
  return (
    <Home
      onSignOut={() => {
        void signOut().then(() => setStage({ kind: 'signed-out', note: 'You have signed out.' }));
      }}
    />
  );
}

function SignIn({ note, error, onError }: { note: string | undefined; error: unknown; onError: (error: unknown) => void }) {
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Sign in · My health record';
  }, []);
  return (
    <main class="portal-page portal-sign-in" id="main" data-testid="portal-sign-in">
      <h1>My health record</h1>
      <p>See your records from every hospital that shares them here, decide who may read them, and see who did.</p>
      {note ? <Note kind="info" testid="sign-in-note">{note}</Note> : null}
      <ErrorNote error={error} testid="sign-in-error" />
      <button
        type="button"
        class="button button-primary button-large"
        disabled={busy}
        data-testid="sign-in"
        onClick={() => {
          setBusy(true);
          onError(undefined);
          beginSignIn().catch((caught: unknown) => {
            setBusy(false);
            onError(caught);
          });
        }}
      >
        {busy ? 'Going to sign-in…' : 'Sign in'}
      </button>
    </main>
  );
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash || VIEWS[0].hash);
  useEffect(() => {
    const changed = (): void => setHash(location.hash || VIEWS[0].hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function Home({ onSignOut }: { onSignOut: () => void }) {
  const [me, setMe] = useState<Me | undefined>();
  const [error, setError] = useState<unknown>();
  const hash = useHash();
  useEffect(() => {
    portalJson<Me>('/me').then(setMe, setError);
  }, []);
  const view = VIEWS.find((v) => v.hash === hash) ?? VIEWS[0];
  useEffect(() => {
    document.title = `${view.label} · My health record`;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [view.hash]);
  return (
    <div class="portal">
      <a class="skip-link" href="#main" onClick={(event) => { event.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="portal-header">
        <span class="portal-title">My health record</span>
        <nav aria-label="Portal">
          <ul>
            {VIEWS.map((v) => (
              <li key={v.hash}>
                <a href={v.hash} class={v.hash === view.hash ? 'active' : ''} aria-current={v.hash === view.hash ? 'page' : undefined} data-testid={`nav-${v.hash.slice(1)}`}>
                  {v.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="portal-who">
          {me ? <span data-testid="me-name">{me.name}</span> : null}
          <button type="button" class="button button-small" onClick={onSignOut} data-testid="sign-out">
            Sign out
          </button>
        </span>
      </header>
      <main class="portal-page" id="main" tabIndex={-1}>
        <ErrorNote error={error} testid="me-error" />
        {me && me.patients.length === 0 ? (
          <Note kind="info" testid="no-patients">
            Your account is not linked to any patient record yet. Registration staff at your hospital can link it.
          </Note>
        ) : null}
        {me && me.patients.length > 0 ? (
          view.hash === '#consents' ? <MyConsents me={me} /> : view.hash === '#access' ? <WhoLooked me={me} /> : <MyRecords me={me} />
        ) : null}
      </main>
    </div>
  );
}
