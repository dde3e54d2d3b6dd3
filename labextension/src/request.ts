import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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
    throw new ApiError(
      response.status,
      err.error ?? 'http_error',
      err.message ?? `The server answered ${response.status} ${response.statusText}.`
    );
  }
  return data as T;
}
