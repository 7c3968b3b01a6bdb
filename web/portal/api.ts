/**
 * Calls to the engine with the signed-in person's access token. Answers are parsed losslessly (anchor/json.ts), as the
 * console's are: a result of `5.40` is shown as `5.40`, and a proof's resource hash is computed on the digits as sent.
 * Errors are the console's ApiError, carrying the engine's ANCHORLINE_ERR_* code, so its error notes show them.
 *
 * A 401 is answered once by refreshing the token and trying again; a second 401 means the person is signed out.
 */
import { parseJson } from '../../anchor/json.ts';
import { ApiError } from '../src/api.ts';
import { currentAccessToken, forgetTokens, refreshTokens } from './session.ts';

export { ApiError };

type Listener = () => void;
const signedOutListeners = new Set<Listener>();

/** Called when the engine no longer accepts the person's tokens: the portal shows its sign-in page again. */
export function onSignedOut(listener: Listener): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

interface OperationOutcome {
  issue?: Array<{ diagnostics?: string; details?: { coding?: Array<{ code?: string }>; text?: string } }>;
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = response.headers.get('x-anchorline-error') ?? undefined;
  let detail = `${response.status} ${response.statusText}`;
  try {
    const issue = ((await response.json()) as OperationOutcome).issue?.[0];
    if (issue) {
      code = issue.details?.coding?.[0]?.code ?? code;
      detail = issue.diagnostics ?? issue.details?.text ?? detail;
    }
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(response.status, code, detail);
}

export interface PortalRequest {
  method?: 'GET' | 'POST' | 'PUT';
  /** A FHIR resource, sent as application/fhir+json. */
  body?: unknown;
}

async function send(path: string, request: PortalRequest, token: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/fhir+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (request.body !== undefined) headers['content-type'] = 'application/fhir+json';
  return fetch(path, { method: request.method ?? 'GET', headers, ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}) });
}

/** The answer's text as sent; throws ApiError. */
export async function portalText(path: string, request: PortalRequest = {}): Promise<string> {
  let response = await send(path, request, await currentAccessToken());
  if (response.status === 401) {
    const fresh = await refreshTokens();
    if (fresh) response = await send(path, request, fresh.accessToken);
  }
  if (response.status === 401) {
    forgetTokens();
    for (const listener of signedOutListeners) listener();
  }
  if (!response.ok) throw await errorFrom(response);
  return response.text();
}

/** JSON from the engine, parsed losslessly; throws ApiError. */
export async function portalJson<T>(path: string, request: PortalRequest = {}): Promise<T> {
  return parseJson(await portalText(path, request)) as T;
}

/** A path on this origin from a link the engine wrote as an absolute URL (a Bundle's `next`). */
export function samePath(url: string): string {
  const parsed = new URL(url, location.origin);
  return `${parsed.pathname}${parsed.search}`;
}
