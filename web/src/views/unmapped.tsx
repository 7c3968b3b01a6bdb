/**
 * The unmapped-code worklist (GET /terminology/unmapped): local codes that arrived without a mapping to a standard
 * code system. Resolving one adds the mapping to a new version of the ConceptMap and maps again the messages that
 * carried the code (POST /terminology/unmapped/resolve).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { ErrorNote, Note, Panel, Timestamp, formatNumber, useAction } from '../components.tsx';
import type { ResolveOutcome, UnmappedCode } from '../types.ts';

const EQUIVALENCES = ['equivalent', 'equal', 'wider', 'narrower', 'subsumes', 'specializes', 'relatedto', 'inexact'] as const;
const TARGET_SYSTEMS = [
  ['http://snomed.info/sct', 'SNOMED CT'],
  ['http://loinc.org', 'LOINC'],
  ['http://hl7.org/fhir/sid/icd-10-cm', 'ICD-10-CM'],
  ['http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8', 'KCD-8'],
] as const;

export function UnmappedCodes() {
  const [status, setStatus] = useState<'false' | 'true' | 'any'>('false');
  const [list, setList] = useState<{ total: number; codes: UnmappedCode[] } | undefined>();
  const [resolving, setResolving] = useState<UnmappedCode | undefined>();
  const [resolved, setResolved] = useState<{ code: UnmappedCode; outcome: ResolveOutcome } | undefined>();
  const loader = useAction(async () => setList(await api(`/terminology/unmapped${query({ resolved: status, _count: 200 })}`)));
  useEffect(() => void loader.run(), [status]);

  return (
    <div class="view" data-testid="unmapped">
      <header class="view-head">
        <h1>Unmapped codes</h1>
        <span class="muted small">Local codes with no mapping to a standard code system, most frequent first.</span>
      </header>
      <div class="toolbar">
        <label class="field field-inline">
          <span>Show</span>
          <select value={status} onChange={(event) => setStatus((event.target as HTMLSelectElement).value as typeof status)} data-testid="unmapped-status">
            <option value="false">open</option>
            <option value="true">resolved</option>
            <option value="any">all</option>
          </select>
        </label>
        <button type="button" class="button" onClick={() => void loader.run()} disabled={loader.busy}>
          Refresh
        </button>
      </div>
      <ErrorNote error={loader.error} />
      {resolved ? (
        <Note kind="ok" testid="resolve-outcome">
          <code>{resolved.code.code}</code> mapped in {resolved.outcome.conceptMap.url} version {resolved.outcome.conceptMap.version}; {resolved.outcome.requeuedMessages} messages sent back to be
          mapped.
        </Note>
      ) : null}
      <Panel title={list ? `${formatNumber(list.total)} codes` : 'Codes'} testid="unmapped-list">
        {list && list.codes.length === 0 ? <p class="muted">Nothing here.</p> : null}
        {list && list.codes.length > 0 ? (
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">system</th>
                  <th scope="col">code</th>
                  <th scope="col">display as sent</th>
                  <th scope="col">source</th>
                  <th scope="col" class="num">seen</th>
                  <th scope="col" class="num">waiting messages</th>
                  <th scope="col">last seen</th>
                  <th scope="col" />
                </tr>
              </thead>
              <tbody>
                {list.codes.map((code) => (
                  <tr key={`${code.system}|${code.code}|${code.source}`} data-testid="unmapped-row" data-code={code.code}>
                    <td class="wrap">
                      <code class="small">{code.system}</code>
                    </td>
                    <td>
                      <code>{code.code}</code>
                    </td>
                    <td>{code.display ?? <span class="muted">–</span>}</td>
                    <td>{code.source}</td>
                    <td class="num">{formatNumber(code.occurrences)}</td>
                    <td class="num">{formatNumber(code.messages)}</td>
                    <td class="nowrap">
                      <Timestamp at={code.lastSeen} />
                    </td>
                    <td>
                      {code.resolvedAt ? (
                        <span class="muted small">
                          resolved <Timestamp at={code.resolvedAt} />
                        </span>
                      ) : (
                        <button type="button" class="button button-small" onClick={() => setResolving(code)} data-testid="resolve-open">
                          Resolve…
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </Panel>
      {resolving ? (
        <ResolveForm
          code={resolving}
          onCancel={() => setResolving(undefined)}
          onResolved={(outcome) => {
            setResolved({ code: resolving, outcome });
            setResolving(undefined);
            void loader.run();
          }}
        />
      ) : null}
    </div>
  );
}

function ResolveForm({ code, onCancel, onResolved }: { code: UnmappedCode; onCancel: () => void; onResolved: (outcome: ResolveOutcome) => void }) {
  const [targetSystem, setTargetSystem] = useState<string>(TARGET_SYSTEMS[0][0]);
  const [targetCode, setTargetCode] = useState('');
  const [display, setDisplay] = useState('');
  const [equivalence, setEquivalence] = useState<string>('equivalent');
  const [conceptMap, setConceptMap] = useState('');
  const submit = useAction(async () => {
    const outcome = await api<ResolveOutcome>('/terminology/unmapped/resolve', {
      body: {
        system: code.system,
        code: code.code,
        target: { system: targetSystem.trim(), code: targetCode.trim(), ...(display.trim() ? { display: display.trim() } : {}) },
        equivalence,
        ...(conceptMap.trim() ? { conceptMap: conceptMap.trim() } : {}),
      },
    });
    onResolved(outcome);
  });
  return (
    <Panel title={<>Map {code.code}</>} testid="resolve-form">
      <form
        class="form-grid"
        onSubmit={(event) => {
          event.preventDefault();
          void submit.run();
        }}
      >
        <p class="muted small span-2">
          From <code>{code.system}</code> <code>{code.code}</code>
          {code.display ? ` (${code.display})` : ''}.
        </p>
        <label class="field">
          <span>Target code system</span>
          <input list="target-systems" value={targetSystem} onInput={(event) => setTargetSystem((event.target as HTMLInputElement).value)} data-testid="resolve-system" required />
          <datalist id="target-systems">
            {TARGET_SYSTEMS.map(([url, label]) => (
              <option value={url} key={url}>
                {label}
              </option>
            ))}
          </datalist>
        </label>
        <label class="field">
          <span>Target code</span>
          <input value={targetCode} onInput={(event) => setTargetCode((event.target as HTMLInputElement).value)} data-testid="resolve-code" required autoFocus />
        </label>
        <label class="field">
          <span>Display (optional)</span>
          <input value={display} onInput={(event) => setDisplay((event.target as HTMLInputElement).value)} data-testid="resolve-display" />
        </label>
        <label class="field">
          <span>Equivalence</span>
          <select value={equivalence} onChange={(event) => setEquivalence((event.target as HTMLSelectElement).value)}>
            {EQUIVALENCES.map((e) => (
              <option value={e} key={e}>
                {e}
              </option>
            ))}
          </select>
        </label>
        <label class="field span-2">
          <span>ConceptMap URL (optional: needed when several maps translate this system)</span>
          <input value={conceptMap} onInput={(event) => setConceptMap((event.target as HTMLInputElement).value)} />
        </label>
        <div class="button-row span-2">
          <button type="submit" class="button button-primary" disabled={submit.busy} data-testid="resolve-submit">
            Add mapping
          </button>
          <button type="button" class="button button-quiet" onClick={onCancel}>
            Cancel
          </button>
        </div>
        <div class="span-2">
          <ErrorNote error={submit.error} testid="resolve-error" />
        </div>
      </form>
    </Panel>
  );
}
