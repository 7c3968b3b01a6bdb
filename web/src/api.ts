/**
 * Calls to the engine's API with the operator's key. The key lives in sessionStorage only: it is gone when the tab
 * closes, and never reaches localStorage, a cookie or a URL. A 401 anywhere forgets it and returns to the login view.
 */
import { parseJson } from '../../anchor/json.ts';

const KEY_STORAGE = 'anchorline.console.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function rememberKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_STORAGE);
}

type Listener = () => void;
const loggedOutListeners = new Set<Listener>();

/** Called when the engine refuses the key (401): the app shows the login view again. */
export function onLoggedOut(listener: Listener): () => void {
  loggedOutListeners.add(listener);
  return () => loggedOutListeners.delete(listener);
}

/** A failed API call, with the engine's error code (ANCHORLINE_ERR_*) when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly detail: string;
  readonly location: string | undefined;

  constructor(status: number, code: string | undefined, detail: string, location?: string) {
    super(code ? `${code}: ${detail}` : detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.location = location;
  }
}

interface OperationOutcomeIssue {
  diagnostics?: string;
  details?: { coding?: Array<{ code?: string }>; text?: string };
  expression?: string[];
  location?: string[];
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = response.headers.get('x-anchorline-error') ?? undefined;
  let detail = `${response.status} ${response.statusText}`;
  let location: string | undefined;
  try {
    const body = (await response.json()) as { issue?: OperationOutcomeIssue[] };
    const issue = body.issue?.[0];
    if (issue) {
      code = issue.details?.coding?.[0]?.code ?? code;
      detail = issue.diagnostics ?? issue.details?.text ?? detail;
      location = issue.expression?.[0] ?? issue.location?.[0];
    }
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(response.status, code, detail, location);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Do not treat 401 as a logout (the login view checks a key it has not stored yet). */
  key?: string;
  accept?: string;
}

async function send(path: string, options: RequestOptions): Promise<Response> {
  const key = options.key ?? storedKey();
  const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method: options.method ?? (options.body === undefined ? 'GET' : 'POST'), headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  if (response.status === 401 && options.key === undefined) {
    forgetKey();
    for (const listener of loggedOutListeners) listener();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/**
 * JSON from the API, parsed losslessly (anchor/json.ts): a resource's decimal `5.40` stays `5.40` (a LosslessNumber)
 * rather than becoming 5.4 as with response.json(); throws ApiError.
 */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return parseJson(await apiText(path, options)) as T;
}

/** The body of an API answer as text, as it was sent; throws ApiError. */
export async function apiText(path: string, options: RequestOptions = {}): Promise<string> {
  return (await send(path, options)).text();
}

/** Bytes from the API (a raw message, a DICOM instance); throws ApiError. */
export async function apiBytes(path: string, options: RequestOptions = {}): Promise<Uint8Array> {
  return new Uint8Array(await (await send(path, { ...options, accept: options.accept ?? 'application/octet-stream' })).arrayBuffer());
}

/** A query string from the values that are set. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
