/**
 * My consents: the consents on each of the person's records, a form that grants access to a practitioner or an
 * organisation (consent.ts writes the FHIR Consent), and revoking one (PUT with status inactive, so that its history
 * keeps what was granted and when it ended).
 */
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, Note, Panel, useAction } from '../src/components.tsx';
import { portalJson } from './api.ts';
import { CONSENT_PURPOSES, SENSITIVE_CATEGORIES, consentFor, grantProblem, revoked, summariseConsent, type SensitiveCategory } from './consent.ts';
import { PURPOSE_WORDS, type FhirResource } from './describe.ts';
import { readAllPages, usePatientLabels } from './records.tsx';
import type { Me } from './me.ts';

export function MyConsents({ me }: { me: Me }) {
  const labels = usePatientLabels(me.patients);
  const [consents, setConsents] = useState<Record<string, FhirResource[]>>({});
  const [loaded, setLoaded] = useState(0);
  const loader = useAction(async () => {
    const next: Record<string, FhirResource[]> = {};
    for (const patient of me.patients) {
      next[patient] = (await readAllPages(`/fhir/Consent?patient=${encodeURIComponent(patient)}&_count=50`, 5)).resources.filter((r) => r.resourceType === 'Consent');
    }
    setConsents(next);
    setLoaded((n) => n + 1);
  });
  useEffect(() => {
    void loader.run();
  }, [me.patients.join(' ')]);

  return (
    <div class="view" data-testid="my-consents" data-loaded={loaded}>
      <header class="view-head">
        <h1>My consents</h1>
      </header>
      <p class="muted">
        A consent lets a doctor or a hospital read your records for a purpose, for as long as you say. You can keep sensitive information out of it, and revoke it at any time: their next
        read is refused.
      </p>
      <GrantForm me={me} labels={labels} onGranted={() => void loader.run()} />
      <ErrorNote error={loader.error} testid="consents-error" />
      {me.patients.map((patient) => (
        <Panel key={patient} title={`Consents on your record: ${labels[patient]}`} testid="consent-list">
          <ConsentList patient={patient} consents={consents[patient]} onChanged={() => void loader.run()} />
        </Panel>
      ))}
    </div>
  );
}

function ConsentList({ patient, consents, onChanged }: { patient: string; consents: FhirResource[] | undefined; onChanged: () => void }) {
  const revoker = useAction(async (consent: FhirResource) => {
    await portalJson(`/fhir/Consent/${encodeURIComponent(String(consent.id))}`, { method: 'PUT', body: revoked(consent) });
    onChanged();
  });
  if (consents === undefined) return <p class="muted" role="status">Loading…</p>;
  if (consents.length === 0) return <p class="muted" data-testid="no-consents">No consents on this record.</p>;
  return (
    <>
      <ErrorNote error={revoker.error} testid="revoke-error" />
      <ul class="consent-rows" data-patient={patient}>
        {consents.map((consent) => {
          const summary = summariseConsent(consent);
          const active = summary.status === 'active';
          return (
            <li key={summary.id} class={`consent-row ${active ? '' : 'consent-inactive'}`} data-testid="consent-row" data-consent={`Consent/${summary.id}`} data-status={summary.status} data-actor={summary.actors.join(' ')}>
              <div>
                <strong>{summary.kind === 'deny' ? 'Refuses' : 'Lets'} {summary.actors.join(', ') || 'anyone'}</strong>{' '}
                {summary.purposes.length > 0 ? <span>read your record for {summary.purposes.map((p) => PURPOSE_WORDS[p] ?? p).join(', ')}</span> : <span>read your record</span>}
                <div class="muted small">
                  {summary.period.start ? `from ${summary.period.start}` : 'from when it was given'} {summary.period.end ? `until ${summary.period.end}` : 'until revoked'}
                  {summary.excluded.length > 0 ? <span data-testid="consent-excluded">; except {summary.excluded.join(', ')}</span> : null}
                </div>
              </div>
              <span class={`badge ${active ? 'badge-ok' : 'badge-muted'}`} data-testid="consent-status">
                {active ? 'Active' : summary.status === 'inactive' ? 'Revoked' : summary.status}
              </span>
              {active ? (
                <button type="button" class="button button-small" disabled={revoker.busy} onClick={() => void revoker.run(consent)} data-testid="consent-revoke" aria-label={`Revoke the consent for ${summary.actors.join(', ')}`}>
                  Revoke
                </button>
              ) : null}
            </li>
          );
        })}
      </ul>
    </>
  );
}

function GrantForm({ me, labels, onGranted }: { me: Me; labels: Record<string, string>; onGranted: () => void }) {
  const [actor, setActor] = useState('');
  const [purpose, setPurpose] = useState<string>(CONSENT_PURPOSES[0].code);
  const [exclude, setExclude] = useState<SensitiveCategory[]>([]);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [records, setRecords] = useState<string[]>(me.patients);
  const [problem, setProblem] = useState<string | undefined>();
  const [granted, setGranted] = useState<string | undefined>();
  const granter = useAction(async () => {
    setGranted(undefined);
    const chosen = records.filter((r) => me.patients.includes(r));
    if (chosen.length === 0) {
      setProblem('Choose at least one of your records.');
      return;
    }
    for (const patient of chosen) {
      const grant = { patient, actor: actor.trim(), purpose, exclude, from, to };
      const why = grantProblem(grant);
      if (why) {
        setProblem(why);
        return;
      }
    }
    setProblem(undefined);
    // One Consent per record: each hospital's record of the patient is its own Patient, and a consent is about one.
    for (const patient of chosen) await portalJson('/fhir/Consent', { method: 'POST', body: consentFor({ patient, actor: actor.trim(), purpose, exclude, from, to }, new Date()) });
    setGranted(actor.trim());
    onGranted();
  });
  const toggle = <T,>(list: T[], value: T): T[] => (list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);
  return (
    <Panel title="Let someone read my record" testid="grant-form">
      <form
        class="form-grid"
        onSubmit={(event) => {
          event.preventDefault();
          void granter.run();
        }}
      >
        <label class="field span-2">
          <span>Who (a doctor as Practitioner/&lt;id&gt;, or a hospital as Organization/&lt;id&gt;)</span>
          <input value={actor} onInput={(event) => setActor((event.target as HTMLInputElement).value)} placeholder="Practitioner/dr-kim" required spellcheck={false} data-testid="grant-actor" />
        </label>
        <label class="field">
          <span>For</span>
          <select value={purpose} onChange={(event) => setPurpose((event.target as HTMLSelectElement).value)} data-testid="grant-purpose">
            {CONSENT_PURPOSES.map((p) => (
              <option key={p.code} value={p.code}>
                {p.title}
              </option>
            ))}
          </select>
        </label>
        <span />
        <label class="field">
          <span>From (empty: today)</span>
          <input type="date" value={from} onInput={(event) => setFrom((event.target as HTMLInputElement).value)} data-testid="grant-from" />
        </label>
        <label class="field">
          <span>Until (empty: until I revoke it)</span>
          <input type="date" value={to} onInput={(event) => setTo((event.target as HTMLInputElement).value)} data-testid="grant-to" />
        </label>
        <fieldset class="span-2 plain-fieldset">
          <legend>Keep out of it</legend>
          {SENSITIVE_CATEGORIES.map((category) => (
            <label key={category.key} class="check-field">
              <input type="checkbox" checked={exclude.includes(category.key)} onChange={() => setExclude(toggle(exclude, category.key))} data-testid={`grant-exclude-${category.key}`} /> {category.title}
            </label>
          ))}
        </fieldset>
        {me.patients.length > 1 ? (
          <fieldset class="span-2 plain-fieldset">
            <legend>Which of my records</legend>
            {me.patients.map((patient) => (
              <label key={patient} class="check-field">
                <input type="checkbox" checked={records.includes(patient)} onChange={() => setRecords(toggle(records, patient))} data-testid="grant-record" data-patient={patient} /> {labels[patient]}
              </label>
            ))}
          </fieldset>
        ) : null}
        <div class="button-row span-2">
          <button type="submit" class="button button-primary" disabled={granter.busy} data-testid="grant-submit">
            {granter.busy ? 'Saving…' : 'Give consent'}
          </button>
        </div>
      </form>
      {problem ? <Note kind="error" testid="grant-problem">{problem}</Note> : null}
      {granted ? <Note kind="ok" testid="grant-done">{granted} may now read your record as you chose.</Note> : null}
      <ErrorNote error={granter.error} testid="grant-error" />
    </Panel>
  );
}
