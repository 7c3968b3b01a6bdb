/** The console's frame: the login view until a key is accepted, then navigation and the current view. */
import { useEffect, useState } from 'preact/hooks';
import { forgetKey, onLoggedOut, storedKey } from './api.ts';
import { href, useRoute } from './router.ts';
import { Login } from './views/login.tsx';
import { Dashboard } from './views/dashboard.tsx';
import { MessageBrowser } from './views/messages.tsx';
import { MessageView } from './views/message-detail.tsx';
import { MappingTester } from './views/mapping-tester.tsx';
import { UnmappedCodes } from './views/unmapped.tsx';
import { ProofVerifier } from './views/proof-verifier.tsx';

const NAVIGATION = [
  { path: '/dashboard', label: 'Dashboard' },
  { path: '/messages', label: 'Messages' },
  { path: '/dead-letters', label: 'Dead letters' },
  { path: '/tester', label: 'Mapping tester' },
  { path: '/unmapped', label: 'Unmapped codes' },
  { path: '/proofs', label: 'Proof verifier' },
] as const;

export function App() {
  const [key, setKey] = useState<string | null>(storedKey);
  const [expired, setExpired] = useState(false);
  useEffect(
    () =>
      onLoggedOut(() => {
        setKey(null);
        setExpired(true);
      }),
    [],
  );
  if (!key) {
    return (
      <Login
        expired={expired}
        onLogin={(accepted) => {
          setExpired(false);
          setKey(accepted);
        }}
      />
    );
  }
  return (
    <Shell
      onLogout={() => {
        forgetKey();
        setKey(null);
      }}
    />
  );
}

function Shell({ onLogout }: { onLogout: () => void }) {
  const route = useRoute();
  const section = '/' + (route.path.split('/')[1] ?? '');
  useEffect(() => {
    const label = NAVIGATION.find((item) => item.path === section)?.label ?? 'Console';
    document.title = `${label} · anchorline`;
    // Moving between views puts the keyboard at the start of the new one.
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [route.path]);
  return (
    <div class="shell">
      <a class="skip-link" href="#main" onClick={(event) => { event.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <aside class="sidebar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true">◆</span>
          <span>anchorline</span>
        </div>
        <nav aria-label="Console">
          <ul>
            {NAVIGATION.map((item) => (
              <li key={item.path}>
                <a href={href(item.path)} class={section === item.path ? 'active' : ''} aria-current={section === item.path ? 'page' : undefined} data-testid={`nav-${item.path.slice(1)}`}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="sidebar-foot">
          <button type="button" class="button button-quiet" onClick={onLogout} data-testid="logout">
            Log out
          </button>
        </div>
      </aside>
      <main id="main" tabIndex={-1} class="main">
        <View path={route.path} params={route.params} />
      </main>
    </div>
  );
}

function View({ path, params }: { path: string; params: URLSearchParams }) {
  const messageId = /^\/messages\/(\d+)$/.exec(path)?.[1];
  if (messageId) return <MessageView id={Number(messageId)} key={messageId} />;
  switch (path) {
    case '/messages':
      return <MessageBrowser params={params} deadLetters={false} key="messages" />;
    case '/dead-letters':
      return <MessageBrowser params={params} deadLetters={true} key="dead-letters" />;
    case '/tester':
      return <MappingTester params={params} key={params.get('messageId') ?? 'tester'} />;
    case '/unmapped':
      return <UnmappedCodes />;
    case '/proofs':
      return <ProofVerifier params={params} key={params.toString()} />;
    default:
      return <Dashboard />;
  }
}
