/**
 * The engine at a glance, refreshed every few seconds from GET /admin/stats: intake rate, queue depth and backlog,
 * messages by state and, apart from failures, those mapped with warnings, errors by code, and how far anchoring
 * lags. An engine without that route still shows message counts, read from the message search.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, query } from '../api.ts';
import { ErrorNote, Note, Panel, Timestamp, formatAge, formatNumber } from '../components.tsx';
import { href } from '../router.ts';
import type { EngineStats, InboxState, MessagePage } from '../types.ts';

const REFRESH_MS = 3000;
const STATES: InboxState[] = ['queued', 'done', 'failed', 'rejected'];
/** The window of the stats' message counts (RECENT_WINDOW_HOURS in store/operations.ts), in ms. */
const RECENT_WINDOW_MS = 24 * 3600 * 1000;

type Loaded = { kind: 'stats'; stats: EngineStats } | { kind: 'unavailable'; counts: Record<InboxState, number>; warned: number };

export function Dashboard() {
  const [loaded, setLoaded] = useState<Loaded | undefined>();
  const [error, setError] = useState<unknown>();
  const [updatedAt, setUpdatedAt] = useState<Date | undefined>();
  const timer = useRef<number | undefined>(undefined);

  useEffect(() => {
    let stopped = false;
    const refresh = async (): Promise<void> => {
      try {
        const next = await load();
        if (stopped) return;
        setLoaded(next);
        setError(undefined);
        setUpdatedAt(new Date());
      } catch (caught) {
        if (!stopped) setError(caught);
      }
      if (!stopped) timer.current = window.setTimeout(refresh, REFRESH_MS);
    };
    void refresh();
    return () => {
      stopped = true;
      window.clearTimeout(timer.current);
    };
  }, []);

  return (
    <div class="view" data-testid="dashboard">
      <header class="view-head">
        <h1>Dashboard</h1>
        <span class="muted small" aria-live="polite">
          {updatedAt ? `updated ${updatedAt.toLocaleTimeString()} · every ${REFRESH_MS / 1000} s` : 'loading…'}
        </span>
      </header>
      <ErrorNote error={error} />
      {loaded?.kind === 'stats' ? <StatsView stats={loaded.stats} /> : null}
      {loaded?.kind === 'unavailable' ? <Unavailable counts={loaded.counts} warned={loaded.warned} /> : null}
    </div>
  );
}

async function load(): Promise<Loaded> {
  let stats: EngineStats | undefined;
  try {
    stats = await api<EngineStats>('/admin/stats');
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  if (stats) {
    // Stats that do not count messages mapped with warnings: the message search counts the same ones (done, with
    // warnings, received within the stats' window), by the partial index of warned messages.
    stats.messages.mappedWithWarnings ??= await warnedCount(new Date(Date.now() - RECENT_WINDOW_MS).toISOString());
    return { kind: 'stats', stats };
  }
  const [warned, pages] = await Promise.all([warnedCount(undefined), Promise.all(STATES.map((state) => api<MessagePage>(`/admin/messages?state=${state}&limit=1`)))]);
  return { kind: 'unavailable', counts: Object.fromEntries(STATES.map((state, i) => [state, pages[i]!.total])) as Record<InboxState, number>, warned };
}

/** Done messages mapped with warnings (received since `receivedFrom`, when given), from the message search. */
async function warnedCount(receivedFrom: string | undefined): Promise<number> {
  return (await api<MessagePage>(`/admin/messages${query({ state: 'done', warnings: 'true', receivedFrom, limit: 1 })}`)).total;
}

function Tile({ label, value, hint, testid, tone }: { label: string; value: string; hint?: string; testid: string; tone?: 'bad' | 'warn' | 'good' }) {
  return (
    <div class={`tile${tone ? ` tile-${tone}` : ''}`} data-testid={testid}>
      <div class="tile-label">{label}</div>
      <div class="tile-value" data-testid={`${testid}-value`}>
        {value}
      </div>
      {hint ? <div class="tile-hint">{hint}</div> : null}
    </div>
  );
}

/** Messages by state, and, counted apart from the failures, the done ones whose mapping left warnings. */
function StateTiles({ counts, warned }: { counts: Record<InboxState, number>; warned: number }) {
  return (
    <div class="tiles">
      {STATES.map((state) => (
        <a class="tile-link" href={href(state === 'failed' || state === 'rejected' ? '/dead-letters' : '/messages', { state })} key={state}>
          <Tile label={`messages ${state}`} value={formatNumber(counts[state])} testid={`count-${state}`} tone={state === 'failed' && counts[state] > 0 ? 'bad' : state === 'rejected' && counts[state] > 0 ? 'warn' : undefined} />
        </a>
      ))}
      <a class="tile-link" href={href('/messages', { state: 'done', warnings: 'true' })}>
        <Tile label="mapped with warnings" value={formatNumber(warned)} hint="done; some fields not mapped as sent" testid="count-warnings" tone={warned > 0 ? 'warn' : undefined} />
      </a>
    </div>
  );
}

function Unavailable({ counts, warned }: { counts: Record<InboxState, number>; warned: number }) {
  return (
    <>
      <Note kind="warn" testid="stats-unavailable">
        Engine statistics are unavailable (this engine does not serve <code>/admin/stats</code>): rates, queue depth and anchor lag cannot be shown. Message counts below come from the message search.
      </Note>
      <StateTiles counts={counts} warned={warned} />
    </>
  );
}

function StatsView({ stats }: { stats: EngineStats }) {
  const anchorLag = stats.anchor.oldestUnbatchedAgeSeconds;
  return (
    <>
      <div class="tiles">
        <Tile label="messages / s" value={formatNumber(stats.messages.perSecond, 2)} hint="received, last 60 s" testid="rate" />
        <Tile label="received last minute" value={formatNumber(stats.messages.receivedLastMinute)} testid="received-minute" />
        <Tile label="backlog" value={formatNumber(stats.queue.backlog)} hint="inbox messages still queued" testid="backlog" tone={stats.queue.backlog > 1000 ? 'warn' : undefined} />
        <Tile
          label="anchor lag"
          value={formatAge(anchorLag)}
          hint={`${formatNumber(stats.anchor.unbatchedLeaves)} leaves not yet in a batch`}
          testid="anchor-lag"
          tone={anchorLag !== null && anchorLag > 300 ? 'warn' : undefined}
        />
      </div>
      <StateTiles counts={stats.messages.byState} warned={stats.messages.mappedWithWarnings ?? 0} />
      <div class="grid-2">
        <Panel title="Throughput, last 30 minutes" testid="throughput">
          <ThroughputChart points={stats.throughput} />
        </Panel>
        <Panel title={`Queue (${stats.queue.driver})`} testid="queue">
          <dl class="facts">
            <dt>waiting</dt>
            <dd data-testid="queue-waiting">{formatNumber(stats.queue.waiting)}</dd>
            <dt>active</dt>
            <dd>{formatNumber(stats.queue.active)}</dd>
            <dt>delayed</dt>
            <dd>{formatNumber(stats.queue.delayed)}</dd>
            <dt>failed jobs</dt>
            <dd>{formatNumber(stats.queue.failed)}</dd>
            <dt>inbox backlog</dt>
            <dd>{formatNumber(stats.queue.backlog)}</dd>
          </dl>
        </Panel>
      </div>
      <div class="grid-2">
        <Panel title="Errors by code, last 24 hours" testid="errors-by-code">
          {stats.errors.length === 0 ? (
            <p class="muted">No failed or rejected messages.</p>
          ) : (
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">code</th>
                  <th scope="col" class="num">messages</th>
                  <th scope="col">last</th>
                </tr>
              </thead>
              <tbody>
                {stats.errors.map((row) => (
                  <tr key={row.code} data-testid="error-code-row">
                    <td>
                      <a href={href('/dead-letters', { errorCode: row.code })}>
                        <code>{row.code}</code>
                      </a>
                    </td>
                    <td class="num">{formatNumber(row.count)}</td>
                    <td>
                      <Timestamp at={row.lastAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Panel>
        <Panel title="Anchoring" testid="anchoring">
          <dl class="facts">
            <dt>last batch</dt>
            <dd>{stats.anchor.lastBatchNumber === null ? '–' : `#${stats.anchor.lastBatchNumber}`}</dd>
            <dt>closed</dt>
            <dd>
              <Timestamp at={stats.anchor.lastBatchClosedAt} />
            </dd>
            <dt>leaves waiting</dt>
            <dd>{formatNumber(stats.anchor.unbatchedLeaves)}</dd>
            <dt>oldest waiting</dt>
            <dd>{formatAge(stats.anchor.oldestUnbatchedAgeSeconds)}</dd>
            {stats.anchor.chain ? (
              <>
                <dt>last on chain</dt>
                <dd>{stats.anchor.chain.lastAnchoredBatch === null ? '–' : `#${stats.anchor.chain.lastAnchoredBatch}`}</dd>
                <dt>anchored</dt>
                <dd>
                  <Timestamp at={stats.anchor.chain.lastAnchoredAt} />
                </dd>
                <dt>batches not on chain</dt>
                <dd>{formatNumber(stats.anchor.chain.unanchoredBatches)}</dd>
              </>
            ) : (
              <>
                <dt>chain</dt>
                <dd class="muted">local anchoring only</dd>
              </>
            )}
          </dl>
        </Panel>
      </div>
    </>
  );
}

/** Received (bar) and failed (red part) messages per minute; done is in the table below the chart's title. */
function ThroughputChart({ points }: { points: EngineStats['throughput'] }) {
  if (points.length === 0) return <p class="muted">No messages in the last 30 minutes.</p>;
  const width = 600;
  const height = 140;
  const max = Math.max(1, ...points.map((p) => Math.max(p.received, p.done)));
  const step = width / points.length;
  const bar = Math.max(2, step - 3);
  const total = points.reduce((sum, p) => ({ received: sum.received + p.received, done: sum.done + p.done, failed: sum.failed + p.failed }), { received: 0, done: 0, failed: 0 });
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height + 18}`} role="img" aria-label={`per minute: ${total.received} received, ${total.done} done, ${total.failed} failed in the last 30 minutes`}>
        <line x1="0" y1={height} x2={width} y2={height} class="chart-axis" />
        {points.map((p, i) => {
          const x = i * step + 1;
          const received = (p.received / max) * height;
          const failed = (p.failed / max) * height;
          const done = (p.done / max) * height;
          return (
            <g key={p.minute}>
              <title>{`${new Date(p.minute).toLocaleTimeString()}: ${p.received} received, ${p.done} done, ${p.failed} failed`}</title>
              <rect x={x} y={height - received} width={bar} height={received} class="chart-received" />
              <rect x={x} y={height - failed} width={bar} height={failed} class="chart-failed" />
              <rect x={x} y={height - done - 1} width={bar} height={done > 0 ? 2 : 0} class="chart-done" />
            </g>
          );
        })}
        <text x="0" y={height + 14} class="chart-label">
          {new Date(points[0]!.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        </text>
        <text x={width} y={height + 14} text-anchor="end" class="chart-label">
          {new Date(points[points.length - 1]!.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        </text>
      </svg>
      <figcaption class="legend">
        <span class="legend-received">received {formatNumber(total.received)}</span>
        <span class="legend-done" data-testid="throughput-done">done {formatNumber(total.done)}</span>
        <span class="legend-failed">failed {formatNumber(total.failed)}</span>
      </figcaption>
    </figure>
  );
}
