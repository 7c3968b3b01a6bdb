/**
 * The HTML of the sign-in pages: login, approval of an app's scopes (with the choice of a patient), errors.
 * Server-rendered, no scripts at all, every value escaped; the one style sheet is inline and allowed by its hash in
 * the Content-Security-Policy, so that nothing else (no injected style or script) runs even if escaping failed.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body { font: 16px/1.45 system-ui, sans-serif; margin: 0; background: #f3f5f7; color: #1d2731; }
main { max-width: 28rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
h1 { font-size: 1.35rem; margin-top: 0; }
label { display: block; margin: 1rem 0 .25rem; font-weight: 600; }
input, select { width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem; border: 1px solid #8795a1; border-radius: 4px; }
button { margin-top: 1.25rem; padding: .6rem 1.2rem; font-size: 1rem; border-radius: 4px; border: 0; background: #1f5f99; color: #fff; cursor: pointer; }
button.secondary { background: #e4e8ec; color: #1d2731; margin-left: .5rem; }
.error { background: #fdecea; color: #8a1c12; padding: .6rem .8rem; border-radius: 4px; }
.muted { color: #56636f; font-size: .9rem; }
ul { padding-left: 1.2rem; }
li.refused { color: #56636f; }
`;

/** Content-Security-Policy of every sign-in page: no scripts, the one style, forms posted back here. */
const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'`;

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export const PAGE_CSP = CSP;

export interface LoginPage {
  uid: string;
  appName: string;
  username?: string;
  error?: string;
}

export function loginPage(view: LoginPage): string {
  return page('Sign in', `
<h1>Sign in</h1>
<p class="muted">to continue to <strong data-testid="app-name">${escapeHtml(view.appName)}</strong></p>
${view.error ? `<p class="error" role="alert" data-testid="sign-in-error">${escapeHtml(view.error)}</p>` : ''}
<form method="post" action="/auth/interaction/${escapeHtml(view.uid)}/login" autocomplete="on">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required value="${escapeHtml(view.username ?? '')}" data-testid="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required data-testid="password">
<button type="submit" data-testid="sign-in">Sign in</button>
</form>
<form method="post" action="/auth/interaction/${escapeHtml(view.uid)}/abort"><button class="secondary" type="submit">Cancel</button></form>`);
}

export interface ScopeLine {
  scope: string;
  text: string;
  refusedBecause?: string;
}

export interface ConsentPage {
  uid: string;
  appName: string;
  personName: string;
  scopes: ScopeLine[];
  /** The patient choice: a list to choose from (a representative's patients), or free entry (practitioners). */
  patientChoice?: { kind: 'list'; options: Array<{ id: string; label: string }> } | { kind: 'entry'; value?: string };
  /** The patient the launch will be for, when there is nothing to choose. */
  launchPatient?: string;
  /** How that patient reads to the person: their name and record number as stored (a launch is for one record). */
  launchPatientLabel?: string;
  error?: string;
}

export function consentPage(view: ConsentPage): string {
  const granted = view.scopes.filter((s) => !s.refusedBecause);
  const refused = view.scopes.filter((s) => s.refusedBecause);
  const choice = view.patientChoice;
  const patientField = !choice
    ? view.launchPatient ? `<p>For <strong data-testid="launch-patient">${escapeHtml(view.launchPatientLabel ?? view.launchPatient)}</strong></p>` : ''
    : choice.kind === 'list'
      ? `<label for="patient">Patient</label><select id="patient" name="patient" data-testid="patient">${choice.options.map((o) => `<option value="${escapeHtml(o.id)}">${escapeHtml(o.label)}</option>`).join('')}</select>`
      : `<label for="patient">Patient id</label><input id="patient" name="patient" required value="${escapeHtml(choice.value ?? '')}" data-testid="patient" autocomplete="off">`;
  return page('Allow access', `
<h1>Allow ${escapeHtml(view.appName)}?</h1>
<p class="muted">Signed in as <strong data-testid="person-name">${escapeHtml(view.personName)}</strong></p>
${view.error ? `<p class="error" role="alert" data-testid="consent-error">${escapeHtml(view.error)}</p>` : ''}
<form method="post" action="/auth/interaction/${escapeHtml(view.uid)}/confirm">
${patientField}
<p>The app will be able to:</p>
<ul data-testid="granted-scopes">${granted.map((s) => `<li title="${escapeHtml(s.scope)}">${escapeHtml(s.text)}</li>`).join('') || '<li>nothing beyond knowing who you are</li>'}</ul>
${refused.length > 0 ? `<p class="muted">Not granted:</p><ul data-testid="refused-scopes">${refused.map((s) => `<li class="refused" title="${escapeHtml(s.scope)}">${escapeHtml(s.text)}: ${escapeHtml(s.refusedBecause)}</li>`).join('')}</ul>` : ''}
<button type="submit" data-testid="approve">Allow</button>
</form>
<form method="post" action="/auth/interaction/${escapeHtml(view.uid)}/abort"><button class="secondary" type="submit" data-testid="deny">Deny</button></form>`);
}

export const errorPage = {
  csp: CSP,
  render(message: string, code?: string): string {
    return page('Sign-in problem', `<h1>Sign-in could not continue</h1><p class="error" role="alert" data-testid="sign-in-error">${escapeHtml(message)}</p>${code ? `<p class="muted">${escapeHtml(code)}</p>` : ''}`);
  },
};

/** What a SMART scope lets an app do, in words. */
export function describeScope(scope: string): string {
  const fixed: Record<string, string> = {
    openid: 'know who you are',
    fhirUser: 'know your FHIR record (who you are in the health record)',
    profile: 'see your name and username',
    'launch/patient': 'know which patient this launch is for',
    launch: 'take part in a launch from the record system',
    offline_access: 'keep access when you are not using it (until you revoke it)',
    online_access: 'keep access while you are signed in',
  };
  if (fixed[scope]) return fixed[scope]!;
  const match = /^(patient|user)\/(\*|[A-Za-z]+)\.(.+)$/.exec(scope);
  if (!match) return scope;
  const letters = match[3] === 'read' ? 'rs' : match[3] === 'write' ? 'cud' : match[3] === '*' ? 'cruds' : match[3]!;
  const verbs = [letters.includes('r') || letters.includes('s') ? 'read' : '', /[cud]/.test(letters) ? 'change' : ''].filter(Boolean).join(' and ');
  const what = match[2] === '*' ? 'all records' : `${match[2]} records`;
  return `${verbs || 'use'} ${what} ${match[1] === 'patient' ? "of the patient in context" : 'you have access to'}`;
}
