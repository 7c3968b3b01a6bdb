/** Small pieces every view uses. */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { stringifyJson } from '../../anchor/json.ts';
import { ApiError } from './api.ts';
import type { InboxState } from './types.ts';

export function StateBadge({ state }: { state: InboxState | string }) {
  return (
    <span class={`badge badge-${state}`} data-testid="state-badge" data-state={state}>
      {state}
    </span>
  );
}

/** A failed call, with its engine error code when there is one. */
export function ErrorNote({ error, testid = 'error' }: { error: unknown; testid?: string }) {
  if (error === undefined || error === null) return null;
  const coded = error instanceof ApiError ? error : undefined;
  return (
    <div class="note note-error" role="alert" data-testid={testid}>
      {coded?.code ? <code class="code">{coded.code}</code> : null}
      <span>{coded ? coded.detail : String((error as Error).message ?? error)}</span>
    </div>
  );
}

export function Note({ kind = 'info', children, testid }: { kind?: 'info' | 'ok' | 'warn' | 'error'; children: ComponentChildren; testid?: string }) {
  return (
    <div class={`note note-${kind}`} role={kind === 'error' ? 'alert' : 'status'} data-testid={testid}>
      {children}
    </div>
  );
}

export function Panel({ title, actions, children, testid }: { title?: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren; testid?: string }) {
  return (
    <section class="panel" data-testid={testid}>
      {title || actions ? (
        <header class="panel-head">
          {title ? <h2>{title}</h2> : <span />}
          {actions ? <div class="panel-actions">{actions}</div> : null}
        </header>
      ) : null}
      <div class="panel-body">{children}</div>
    </section>
  );
}

/** JSON, indented; collapsed behind its summary when `summary` is given. */
export function JsonBlock({ value, summary, testid, open = false }: { value: unknown; summary?: ComponentChildren; testid?: string; open?: boolean }) {
  // stringifyJson: values from api() may hold LosslessNumbers (a decimal `5.40`), which it writes as sent.
  const text = stringifyJson(value, 2);
  if (summary === undefined) {
    return (
      <pre class="json" data-testid={testid}>
        {text}
      </pre>
    );
  }
  return (
    <details class="json-details" open={open} data-testid={testid}>
      <summary>{summary}</summary>
      <pre class="json">{text}</pre>
    </details>
  );
}

export function Timestamp({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">–</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })}
    </time>
  );
}

export function ShortHash({ hash }: { hash: string | null | undefined }) {
  if (!hash) return <span class="muted">–</span>;
  return (
    <code class="hash" title={hash}>
      {hash.slice(0, 12)}…
    </code>
  );
}

/** Runs an async action, tracking whether it is under way and what it failed with. */
export function useAction<A extends unknown[]>(action: (...args: A) => Promise<void>): { run: (...args: A) => Promise<void>; busy: boolean; error: unknown } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (...args: A): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      await action(...args);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error };
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
