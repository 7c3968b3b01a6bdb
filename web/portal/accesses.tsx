/**
 * Who looked at my record: the engine's read AuditEvents about one of the person's records, newest first, a page at a
 * time. Each access shows who, when, what, why, and what allowed it: a consent (entity role 13) or break-the-glass
 * (meta.security BTG, with the reason given), which is marked for attention.
 *
 * "Verify" checks that the entry is in the engine's append-only log, here in the browser with anchor/'s verifier,
 * the one `anchorline verify` and the console run: it fetches the entry's proof bundle and the entry itself, and
 * checks the leaf, the inclusion proof and the signed checkpoint against the log key the engine publishes (GET /log).
 * An entry not yet in a checkpoint is pending (ANCHORLINE_ERR_PROOF_PENDING), not failed.
 */
import { useEffect, useState } from 'preact/hooks';
import { verifyBundle } from '../../anchor/index.ts';
import { ErrorNote, Panel, useAction } from '../src/components.tsx';
import { VerdictView, verdictOf, type Verdict } from '../src/views/proof-verdict.tsx';
import { readStrictJson } from '../src/views/proof-inputs.ts';
import { ApiError, portalJson, portalText, samePath } from './api.ts';
import { accessRow, formatWhen, PURPOSE_WORDS, TYPE_TITLES, withoutVersion, type AccessRow, type FhirResource } from './describe.ts';
import { usePatientLabels } from './records.tsx';
import type { Me } from './me.ts';

const PAGE_SIZE = 20;

interface SearchBundle {
  link?: Array<{ relation?: string; url?: string }>;
  entry?: Array<{ resource?: FhirResource }>;
}

/** Search pages read at most to fill one page of the list when the person's own visits are hidden. */
const MAX_PAGES_PER_VIEW = 10;

export function WhoLooked({ me }: { me: Me }) {
  const labels = usePatientLabels(me.patients);
  const [patient, setPatient] = useState(me.patients[0]!);
  const [hideOwn, setHideOwn] = useState(true);
  /** Where each page of the list started, the current one last: Newer goes back to the one before. */
  const [starts, setStarts] = useState<string[]>([]);
  const [rows, setRows] = useState<AccessRow[] | undefined>();
  const [next, setNext] = useState<string | undefined>();
  const own = new Set([me.fhirUser, ...me.patients]);
  const isOwn = (row: AccessRow): boolean => row.whoReference !== undefined && own.has(row.whoReference);

  // Reading one's own record is recorded too, and every visit to this portal adds entries: with those hidden, search
  // pages are read on until the list has a page of other people's accesses, or the trail ends.
  const loader = useAction(async (start: string) => {
    const found: AccessRow[] = [];
    let url: string | undefined = start;
    for (let pages = 0; url !== undefined && pages < MAX_PAGES_PER_VIEW && found.length < PAGE_SIZE; pages++) {
      const bundle: SearchBundle = await portalJson<SearchBundle>(url);
      for (const entry of bundle.entry ?? []) {
        if (entry.resource?.resourceType !== 'AuditEvent') continue;
        const row = accessRow(entry.resource);
        if (!hideOwn || !isOwn(row)) found.push(row);
      }
      const link = bundle.link?.find((l) => l.relation === 'next')?.url;
      url = link ? samePath(link) : undefined;
    }
    setRows(found);
    setNext(url);
  });
  const first = `/fhir/AuditEvent?patient=${encodeURIComponent(patient)}&_count=${PAGE_SIZE}`;
  const current = starts[starts.length - 1] ?? first;
  useEffect(() => {
    setRows(undefined);
    void loader.run(current);
  }, [patient, current, hideOwn]);

  return (
    <div class="view" data-testid="who-looked">
      <header class="view-head">
        <h1>Who looked at my record</h1>
      </header>
      <p class="muted">Every time someone reads your record, the engine writes it down, and cannot change or remove it afterwards. Newest first.</p>
      <div class="toolbar">
        {me.patients.length > 1 ? (
          <label class="field field-inline">
            <span>Record</span>
            <select
              value={patient}
              onChange={(event) => {
                setPatient((event.target as HTMLSelectElement).value);
                setStarts([]);
              }}
              data-testid="access-patient"
            >
              {me.patients.map((p) => (
                <option key={p} value={p}>
                  {labels[p]}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <label class="check-field">
          <input type="checkbox" checked={hideOwn} onChange={() => setHideOwn(!hideOwn)} data-testid="access-hide-own" /> Hide my own visits
        </label>
        <button type="button" class="button button-small" disabled={loader.busy} onClick={() => void loader.run(current)} data-testid="access-refresh">
          Refresh
        </button>
      </div>
      <ErrorNote error={loader.error} testid="access-error" />
      <Panel testid="access-list">
        {rows === undefined ? <p class="muted" role="status">Loading…</p> : null}
        {rows?.length === 0 ? <p class="muted" data-testid="access-empty">{hideOwn ? 'No one else read this record' : 'No reads of this record'}{starts.length > 0 ? ' before these' : ''}.</p> : null}
        {rows && rows.length > 0 ? (
          <table class="table access-table">
            <caption class="visually-hidden">Accesses to {labels[patient]}</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">Why</th>
                <th scope="col">Allowed by</th>
                <th scope="col">Proof</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <AccessLine key={row.id} row={row} own={isOwn(row)} />
              ))}
            </tbody>
          </table>
        ) : null}
        <div class="button-row">
          <button type="button" class="button button-small" disabled={starts.length === 0 || loader.busy} onClick={() => setStarts(starts.slice(0, -1))} data-testid="access-newer">
            Newer
          </button>
          <button type="button" class="button button-small" disabled={next === undefined || loader.busy} onClick={() => next && setStarts([...starts, next])} data-testid="access-older">
            Older
          </button>
        </div>
      </Panel>
    </div>
  );
}

/** What a returned version was, in words, by its type; the reference itself is kept in the title. */
function versionWords(reference: string): string {
  const type = reference.split('/')[0] ?? reference;
  return TYPE_TITLES[type] ? `${TYPE_TITLES[type]} (${type})` : type;
}

function AccessLine({ row, own }: { row: AccessRow; own: boolean }) {
  const when = row.when ? new Date(row.when) : undefined;
  const verification = useVerification(row);
  const outcome = verification.outcome;
  const kinds = [...new Set(row.what.map(versionWords))];
  return (
    <>
      <tr class={row.breakGlass ? 'access-btg' : ''} data-testid="access-row" data-who={row.whoReference ?? row.who} data-consents={row.consents.join(' ')} data-break-glass={String(row.breakGlass)} data-event={`AuditEvent/${row.id}`} data-what={row.what.map(withoutVersion).join(' ')}>
        <td class="nowrap">{when && !Number.isNaN(when.getTime()) ? <time dateTime={row.when}>{when.toLocaleString()}</time> : formatWhen(row.when) ?? '–'}</td>
        <td>
          <span data-testid="access-who">{row.who}</span>
          {row.whoReference && row.whoReference !== row.who ? <span class="muted small block">{row.whoReference}</span> : null}
          {row.action === 'C' || row.action === 'U' ? <span class="muted small block">sent these records</span> : null}
        </td>
        <td data-testid="access-what" title={row.what.map(withoutVersion).join('\n')}>
          {row.what.length === 0 ? <span class="muted">nothing (a search that found nothing)</span> : kinds.map((kind) => <span key={kind} class="block">{kind}</span>)}
          {row.what.length > 1 ? <span class="muted small block">{row.what.length} entries</span> : null}
        </td>
        <td>{row.purposes.filter((p) => p !== 'BTG').map((p) => PURPOSE_WORDS[p] ?? p).join(', ') || '–'}</td>
        <td data-testid="access-basis">
          {row.breakGlass ? (
            <strong class="btg-mark" data-testid="access-btg">
              Emergency access (break the glass){row.outcomeDesc ? `: ${row.outcomeDesc.replace(/^break-the-glass: /, '')}` : ''}
            </strong>
          ) : null}
          {row.consents.map((consent) => (
            <span key={consent} class="block" data-testid="access-consent">
              {consent === 'default policy' ? 'the default policy' : `your consent ${withoutVersion(consent)}`}
            </span>
          ))}
          {!row.breakGlass && row.consents.length === 0 ? (
            // Reads without a consent are the patient's own, or a system's (an interface or operator), which consent does not govern.
            <span class="muted">{own ? 'your own access' : row.whoReference ? '–' : 'a hospital system, not a person'}</span>
          ) : null}
        </td>
        <td>
          <div class="verify-access" data-testid="verify-access" data-state={outcome?.state ?? (verification.error ? 'error' : 'none')}>
            <button type="button" class="button button-small" disabled={verification.busy} onClick={() => void verification.run()} data-testid="verify-button" aria-label={`Verify the record of this access at ${row.when ?? ''}`}>
              {verification.busy ? 'Verifying…' : 'Verify'}
            </button>
            {outcome?.state === 'verified' ? (
              <span class="verify-ok" role="status" data-testid="verify-result">
                ✔ Verified
              </span>
            ) : null}
            {outcome?.state === 'pending' ? (
              <span class="verify-pending" role="status" data-testid="verify-result" title={outcome.detail}>
                Pending: not in a signed checkpoint yet; try again in a moment
              </span>
            ) : null}
            {outcome?.state === 'failed' ? (
              <span class="verify-failed" role="alert" data-testid="verify-result">
                ✘ Not verified
              </span>
            ) : null}
            <ErrorNote error={verification.error} testid="verify-error" />
          </div>
        </td>
      </tr>
      {outcome && outcome.state !== 'pending' ? (
        <tr class="verify-row" data-testid="verify-details" data-event={`AuditEvent/${row.id}`}>
          <td colSpan={6}>
            <details class="verify-details" open={outcome.state === 'failed'}>
              <summary>The checks behind “{outcome.state === 'verified' ? 'Verified' : 'Not verified'}”</summary>
              <VerdictView verdict={outcome.verdict} testid="verify-verdict" />
            </details>
          </td>
        </tr>
      ) : null}
    </>
  );
}

type Outcome = { state: 'verified' | 'failed'; verdict: Verdict } | { state: 'pending'; detail: string };

/** The log key the engine publishes, read once: what a bundle's signer is pinned to. */
let publishedLogKey: Promise<string | undefined> | undefined;

function logKey(): Promise<string | undefined> {
  publishedLogKey ??= fetch('/log', { headers: { accept: 'application/json' } })
    .then(async (response) => (response.ok ? ((await response.json()) as { logKey?: string | null }).logKey ?? undefined : undefined))
    .catch(() => undefined);
  return publishedLogKey;
}

/** Verifies one access's audit entry in this browser when run. */
function useVerification(row: AccessRow): { run: () => Promise<void>; busy: boolean; error: unknown; outcome: Outcome | undefined } {
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const verifier = useAction(async () => {
    setOutcome(undefined);
    const base = `AuditEvent/${encodeURIComponent(row.id)}/_history/${encodeURIComponent(row.versionId)}`;
    let bundleText: string;
    try {
      bundleText = await portalText(`/proofs/${base}`);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'ANCHORLINE_ERR_PROOF_PENDING') {
        setOutcome({ state: 'pending', detail: error.detail });
        return;
      }
      throw error;
    }
    // The entry itself too, so that resource-hash shows the proof is of what this page shows.
    const resourceText = await portalText(`/fhir/${base}`);
    const bundle = readStrictJson(bundleText, 'The proof bundle');
    const resource = readStrictJson(resourceText, 'The entry');
    if (!bundle.ok || !resource.ok) {
      setOutcome({ state: 'failed', verdict: verdictOf([{ name: 'bundle-format', ok: false, detail: !bundle.ok ? bundle.problem : !resource.ok ? resource.problem : '' }]) });
      return;
    }
    const pinned = await logKey();
    const verdict = verdictOf(verifyBundle(bundle.value, { resource: resource.value, ...(pinned ? { logKey: pinned } : {}) }).checks);
    setOutcome({ state: verdict.ok ? 'verified' : 'failed', verdict });
  });
  return { ...verifier, outcome };
}
