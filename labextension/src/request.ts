import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { API_NAMESPACE, IApiError } from './tokens';

/** An API call that failed, with the server's sentence for the user. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message);
  }
}

/** The error code with which the server says the user's hub sign-in has ended. */
export const SIGN_IN_AGAIN = 'sign_in_again';

const SIGN_IN_SENDER = {};
/**
 * Emitted with the server's sentence whenever a call answers 401 `sign_in_again`: the session
 * renews its DataLake token through the hub, and the user's EGI Check-in sign-in has ended.
 */
export const signInAgain = new Signal<object, string>(SIGN_IN_SENDER);

/**
 * Where the user signs in to the hub again: the hub's logout, which ends the hub's cookie (a
 * hub that has not noticed the ended sign-in yet would otherwise send the user straight back)
 * and shows the hub's login page. Null outside a hub.
 */
export function hubSignInUrl(): string | null {
  const prefix = PageConfig.getOption('hubPrefix');
  if (!prefix) {
    return null;
  }
  return PageConfig.getOption('hubHost') + URLExt.join(prefix, 'logout');
}

/** Call the intertwin server extension (handles base URL, XSRF and the hub token). */
export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, 'network', `The JupyterLab server cannot be reached: ${error}`);
  }
  const text = await response.text();
  let data: unknown = text;
  try {
    data = text.length > 0 ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the error below
  }
  if (!response.ok) {
    const err = (data ?? {}) as Partial<IApiError>;
    if (response.status === 401 && err.error === SIGN_IN_AGAIN) {
      signInAgain.emit(err.message ?? '');
    }
    throw new ApiError(
      response.status,
      err.error ?? 'http_error',
      err.message ?? `The server answered ${response.status} ${response.statusText}.`
    );
  }
  return data as T;
}

/** Path segments of a DID for the DataLake routes (names may hold '/' or ':'). */
export function didPath(scope: string, name: string): string {
  return `dids/${encodeURIComponent(scope)}/${encodeURIComponent(name)}`;
}

/** Call the DataLake API under `{baseUrl}intertwin/datalake/`. */
export function datalakeAPI<T>(
  endPoint: string,
  query: Record<string, string | number | null | undefined> = {},
  init: RequestInit = {}
): Promise<T> {
  return requestAPI<T>(`datalake/${endPoint}${queryString(query)}`, init);
}

/** Query parameters as a query string (empty values left out), with its `?`. */
function queryString(query: Record<string, string | number | null | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== '') {
      params.set(k, String(v));
    }
  }
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}

/**
 * Call the intertwin hub service's jobs API through this server (`{baseUrl}intertwin/jobs...`,
 * which forwards with the server's own hub token).
 */
export function jobsAPI<T>(
  endPoint: string,
  query: Record<string, string | number | null | undefined> = {},
  init: RequestInit = {}
): Promise<T> {
  return requestAPI<T>(`${endPoint}${queryString(query)}`, init);
}

/**
 * Read a job's log as it arrives (`jobs/{id}/logs`, streamed through with `follow`): each
 * decoded piece of text goes to `onText`; resolves when the log ends (a followed log: when the
 * job ends), rejects with an `ApiError` carrying the server's sentence. `signal` stops it.
 */
export async function streamLog(
  jobId: string,
  query: { tail: number; follow: boolean },
  onText: (text: string) => void,
  signal: AbortSignal
): Promise<void> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(
    settings.baseUrl,
    API_NAMESPACE,
    `jobs/${encodeURIComponent(jobId)}/logs${queryString({
      tail: query.tail,
      follow: query.follow ? 'true' : null
    })}`
  );
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, { signal }, settings);
  } catch (error) {
    if (signal.aborted) {
      return;
    }
    throw new ApiError(0, 'network', `The JupyterLab server cannot be reached: ${error}`);
  }
  if (!response.ok) {
    const text = await response.text();
    let err: Partial<IApiError> = {};
    try {
      err = JSON.parse(text) as Partial<IApiError>;
    } catch {
      // not JSON: the status says it
    }
    throw new ApiError(
      response.status,
      err.error ?? 'http_error',
      err.message ?? `The server answered ${response.status} ${response.statusText}.`
    );
  }
  if (!response.body) {
    onText(await response.text());
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      onText(decoder.decode(value, { stream: true }));
    }
  } catch (error) {
    if (!signal.aborted) {
      throw new ApiError(0, 'network', `The log stopped arriving: ${error}`);
    }
  }
}

/** The user-facing sentence of any failure. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) {
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}
