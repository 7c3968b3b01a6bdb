/**
 * The message browser (every message) and dead letters (failed, and rejected at intake): search, page, select and
 * reprocess. The filters live in the URL, so a search can be bookmarked and the dashboard can link to one. Messages
 * mapped with warnings (mapping issues) are marked, and the browser can show only those.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { ErrorNote, Note, Panel, StateBadge, Timestamp, formatNumber, useAction } from '../components.tsx';
import { href, navigate } from '../router.ts';
import type { MessagePage, ReprocessOutcome } from '../types.ts';

const PAGE_SIZE = 25;
/** `warnings` is 'true' (only messages mapped with warnings) or ''. */
const FILTERS = ['sender', 'controlId', 'state', 'protocol', 'errorCode', 'messageType', 'warnings', 'receivedFrom', 'receivedTo'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

const PROTOCOLS = [
  ['', 'any protocol'],
  ['hl7v2-mllp', 'HL7 v2 (MLLP)'],
  ['hl7v2-http', 'HL7 v2 (HTTP)'],
  ['cda', 'C-CDA'],
  ['dicom', 'DICOM'],
] as const;

function filtersFrom(params: URLSearchParams, deadLetters: boolean): Filters {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ''])) as Filters;
  if (deadLetters && filters.state === '') filters.state = 'failed,rejected';
  return filters;
}

/** datetime-local values are local times without a zone; the API takes ISO 8601 instants. */
function toInstant(local: string): string | undefined {
  if (local === '') return undefined;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

export function MessageBrowser({ params, deadLetters }: { params: URLSearchParams; deadLetters: boolean }) {
  const applied = filtersFrom(params, deadLetters);
  const offset = Number(params.get('offset') ?? '0') || 0;
  const [draft, setDraft] = useState<Filters>(applied);
  const [page, setPage] = useState<MessagePage | undefined>();
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [outcome, setOutcome] = useState<ReprocessOutcome | undefined>();
  const [reloadCount, setReloadCount] = useState(0);
  const path = deadLetters ? '/dead-letters' : '/messages';

  // Only the answer to the latest search is shown: an earlier one (the unfiltered list the view opened with) that
  // arrives after it must not replace it.
  const latestLoad = useRef(0);
  const loader = useAction(async () => {
    const load = ++latestLoad.current;
    const next = await api<MessagePage>(
      `/admin/messages${query({ ...applied, receivedFrom: toInstant(applied.receivedFrom), receivedTo: toInstant(applied.receivedTo), limit: PAGE_SIZE, offset })}`,
    );
    if (load === latestLoad.current) setPage(next);
  });
  // The form follows the URL when the URL changes (a search, the back button), but not when the view first opens:
  // the form already holds the URL's filters then, and what someone types before this effect runs must stay.
  const shownParams = useRef(params.toString());
  useEffect(() => {
    if (shownParams.current !== params.toString()) {
      shownParams.current = params.toString();
      setDraft(applied);
    }
    void loader.run();
  }, [params.toString(), reloadCount]);

  const reprocess = useAction(async (ids: number[]) => {
    const result = await api<ReprocessOutcome>('/admin/messages/reprocess', { body: { ids } });
    setOutcome(result);
    setSelected(new Set());
    setReloadCount((n) => n + 1);
  });

  const search = (event: Event): void => {
    event.preventDefault();
    setOutcome(undefined);
    navigate(path, { ...draft, ...(deadLetters && draft.state === 'failed,rejected' ? { state: undefined } : {}) });
  };
  const goTo = (nextOffset: number): void => navigate(path, { ...Object.fromEntries(params), offset: nextOffset || undefined });
  const selectable = (page?.messages ?? []).filter((m) => m.disposition === 'accepted');
  const allSelected = selectable.length > 0 && selectable.every((m) => selected.has(m.id));
  const toggle = (id: number): void => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const set = (name: keyof Filters) => (event: Event) => setDraft({ ...draft, [name]: (event.target as HTMLInputElement).value });

  return (
    <div class="view" data-testid={deadLetters ? 'dead-letters' : 'message-browser'}>
      <header class="view-head">
        <h1>{deadLetters ? 'Dead letters' : 'Messages'}</h1>
        <span class="muted small">
          {deadLetters ? 'Messages that failed to map, and messages rejected at intake. Fix the cause (often the mapping config), then reprocess.' : 'Every message the engine received, newest first.'}
        </span>
      </header>

      <form class="filters" onSubmit={search} data-testid="message-filters">
        <label class="field">
          <span>Sender (MSH-3 / MSH-4)</span>
          <input value={draft.sender} onInput={set('sender')} placeholder="EMR or EMR|SNUH" data-testid="filter-sender" />
        </label>
        <label class="field">
          <span>Control id</span>
          <input value={draft.controlId} onInput={set('controlId')} data-testid="filter-control-id" />
        </label>
        <label class="field">
          <span>State</span>
          <select value={draft.state} onChange={set('state')} data-testid="filter-state">
            {deadLetters ? <option value="failed,rejected">failed or rejected</option> : <option value="">any state</option>}
            <option value="queued">queued</option>
            <option value="done">done</option>
            <option value="failed">failed</option>
            <option value="rejected">rejected</option>
          </select>
        </label>
        <label class="field">
          <span>Protocol</span>
          <select value={draft.protocol} onChange={set('protocol')} data-testid="filter-protocol">
            {PROTOCOLS.map(([value, label]) => (
              <option value={value} key={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Error code</span>
          <input value={draft.errorCode} onInput={set('errorCode')} placeholder="ANCHORLINE_ERR_…" data-testid="filter-error-code" />
        </label>
        <label class="field">
          <span>Message type</span>
          <input value={draft.messageType} onInput={set('messageType')} placeholder="ADT or ADT^A01" data-testid="filter-message-type" />
        </label>
        {deadLetters ? null : (
          <label class="check-field filter-check">
            <input
              type="checkbox"
              checked={draft.warnings === 'true'}
              onChange={(event) => setDraft({ ...draft, warnings: (event.target as HTMLInputElement).checked ? 'true' : '' })}
              data-testid="filter-warnings"
            />
            <span>Mapped with warnings</span>
          </label>
        )}
        <label class="field">
          <span>Received from</span>
          <input type="datetime-local" step={1} value={draft.receivedFrom} onInput={set('receivedFrom')} data-testid="filter-from" />
        </label>
        <label class="field">
          <span>Received before</span>
          <input type="datetime-local" step={1} value={draft.receivedTo} onInput={set('receivedTo')} data-testid="filter-to" />
        </label>
        <div class="filter-actions">
          <button type="submit" class="button button-primary" data-testid="search">
            Search
          </button>
          <a class="button button-quiet" href={href(path)}>
            Clear
          </a>
        </div>
      </form>

      <ErrorNote error={loader.error} />
      <ErrorNote error={reprocess.error} />
      {outcome ? (
        <Note kind={outcome.skipped.length > 0 ? 'warn' : 'ok'} testid="reprocess-outcome">
          {outcome.requeued.length} {outcome.requeued.length === 1 ? 'message' : 'messages'} sent back to be mapped
          {outcome.enqueued ? '' : ' (the sweeper will pick them up)'}.
          {outcome.skipped.length > 0 ? ` ${outcome.skipped.length} skipped: ${outcome.skipped.map((s) => `#${s.id} ${s.reason}`).join(', ')}.` : ''}
        </Note>
      ) : null}

      <Panel
        title={page ? `${formatNumber(page.total)} ${page.total === 1 ? 'message' : 'messages'}` : 'Messages'}
        testid="message-results"
        actions={
          <>
            <button type="button" class="button" onClick={() => setReloadCount((n) => n + 1)} disabled={loader.busy} data-testid="refresh">
              Refresh
            </button>
            <button type="button" class="button button-primary" disabled={selected.size === 0 || reprocess.busy} onClick={() => void reprocess.run([...selected])} data-testid="reprocess-selected">
              Reprocess {selected.size > 0 ? selected.size : ''} selected
            </button>
          </>
        }
      >
        {page && page.messages.length === 0 ? <p class="muted">No messages match.</p> : null}
        {page && page.messages.length > 0 ? (
          <div class="table-wrap">
            <table class="table table-messages">
              <thead>
                <tr>
                  <th scope="col" class="check">
                    <input
                      type="checkbox"
                      aria-label="Select every reprocessable message on this page"
                      checked={allSelected}
                      onChange={() => setSelected(allSelected ? new Set() : new Set(selectable.map((m) => m.id)))}
                      data-testid="select-all"
                    />
                  </th>
                  <th scope="col">id</th>
                  <th scope="col">received</th>
                  <th scope="col">sender</th>
                  <th scope="col">type</th>
                  <th scope="col">control id</th>
                  <th scope="col">protocol</th>
                  <th scope="col">state</th>
                  <th scope="col">error</th>
                </tr>
              </thead>
              <tbody>
                {page.messages.map((m) => (
                  <tr key={m.id} data-testid="message-row" data-message-id={m.id} data-control-id={m.controlId ?? ''} data-warnings={m.mappingWarnings} class={selected.has(m.id) ? 'selected' : ''}>
                    <td class="check">
                      <input
                        type="checkbox"
                        checked={selected.has(m.id)}
                        disabled={m.disposition !== 'accepted'}
                        title={m.disposition !== 'accepted' ? 'Rejected at intake: the sender resends it' : undefined}
                        aria-label={`Select message ${m.id}`}
                        onChange={() => toggle(m.id)}
                        data-testid="select-message"
                      />
                    </td>
                    <td>
                      <a href={href(`/messages/${m.id}`)} data-testid="message-link">
                        #{m.id}
                      </a>
                    </td>
                    <td class="nowrap">
                      <Timestamp at={m.receivedAt} />
                    </td>
                    <td>{m.sender || <span class="muted">–</span>}</td>
                    <td>{m.messageType ?? <span class="muted">–</span>}</td>
                    <td>
                      <code>{m.controlId ?? '–'}</code>
                    </td>
                    <td>{m.protocol}</td>
                    <td class="nowrap">
                      <StateBadge state={m.state} />
                      {m.mappingWarnings > 0 ? (
                        <a
                          class="badge badge-warnings"
                          href={href(`/messages/${m.id}`)}
                          title={`Mapped with ${m.mappingWarnings} ${m.mappingWarnings === 1 ? 'warning' : 'warnings'}: open the message to see what could not be mapped as sent`}
                          data-testid="warnings-mark"
                        >
                          ▲ {m.mappingWarnings} {m.mappingWarnings === 1 ? 'warning' : 'warnings'}
                        </a>
                      ) : null}
                    </td>
                    <td class="error-cell">
                      {m.errorCode ? (
                        <span title={m.errorDetail ?? undefined}>
                          <code class="code">{m.errorCode}</code>
                          {m.errorDetail ? <span class="muted small block">{m.errorDetail}</span> : null}
                        </span>
                      ) : (
                        <span class="muted">–</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {page && page.total > PAGE_SIZE ? (
          <nav class="pager" aria-label="Pages">
            <button type="button" class="button" disabled={offset === 0} onClick={() => goTo(Math.max(0, offset - PAGE_SIZE))} data-testid="page-previous">
              ← Newer
            </button>
            <span class="muted" data-testid="page-range">
              {offset + 1}–{Math.min(offset + PAGE_SIZE, page.total)} of {formatNumber(page.total)}
            </span>
            <button type="button" class="button" disabled={offset + PAGE_SIZE >= page.total} onClick={() => goTo(offset + PAGE_SIZE)} data-testid="page-next">
              Older →
            </button>
          </nav>
        ) : null}
      </Panel>
    </div>
  );
}
