/**
 * @jest-environment jsdom
 */
import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, datalakeAPI, hubSignInUrl, signInAgain } from '../../request';

/** The server extension's answer (jsdom has no fetch Response: what requestAPI reads). */
function answer(status: number, body: unknown): void {
  const response = {
    ok: status < 400,
    status,
    statusText: '',
    text: async () => JSON.stringify(body)
  };
  jest.spyOn(ServerConnection, 'makeRequest').mockResolvedValue(response as unknown as Response);
}

describe('requestAPI', () => {
  beforeAll(() => {
    // ServerConnection.makeSettings reads these browser globals, which jsdom lacks; the
    // request itself is the mocked makeRequest
    const g = globalThis as Record<string, unknown>;
    g.fetch ??= jest.fn();
    g.Request ??= class {};
    g.Headers ??= class {};
  });
  afterEach(() => jest.restoreAllMocks());

  it("announces the server's sign_in_again and still fails the call with it", async () => {
    const heard: string[] = [];
    const listen = (_: unknown, message: string): void => {
      heard.push(message);
    };
    signInAgain.connect(listen);
    answer(401, { error: 'sign_in_again', message: 'Sign in to the hub again.' });
    await expect(datalakeAPI('scopes')).rejects.toMatchObject({
      status: 401,
      code: 'sign_in_again'
    });
    expect(heard).toEqual(['Sign in to the hub again.']);
    // an expired Rucio token of a session without renewal is not that
    answer(401, { error: 'token_expired', message: 'Restart your server.' });
    await expect(datalakeAPI('scopes')).rejects.toBeInstanceOf(ApiError);
    expect(heard).toHaveLength(1);
    signInAgain.disconnect(listen);
  });

  it("links to the hub's logout, which leads to its login page", () => {
    expect(hubSignInUrl()).toBeNull();
    PageConfig.setOption('hubPrefix', '/hub/');
    PageConfig.setOption('hubHost', 'https://hub.intertwin.eu');
    expect(hubSignInUrl()).toBe('https://hub.intertwin.eu/hub/logout');
  });
});
