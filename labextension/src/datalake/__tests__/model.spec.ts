/**
 * @jest-environment jsdom
 */
import { ApiError, datalakeAPI, signInAgain } from '../../request';
import { DataLakeModel, IDataLakeHost, INotebookHandle } from '../model';
import { IRucioAttachment } from '../../tokens';

jest.mock('../../request', () => {
  const actual = jest.requireActual('../../request');
  return { ...actual, datalakeAPI: jest.fn() };
});

const api = datalakeAPI as jest.MockedFunction<typeof datalakeAPI>;

const CONFIG = {
  site: 'VEGA',
  site_title: 'Vega (IZUM)',
  rse: 'VEGA-SCRATCH',
  rse_reason: null,
  mount_path: '/scratch',
  account: 'alice',
  default_lifetime_days: 7,
  max_lifetime_days: 30,
  rucio_url: 'https://rucio',
  auth_type: 'oidc'
};

function details(state: string): Record<string, unknown> {
  return {
    scope: 'climate',
    name: 'era5',
    type: 'dataset',
    bytes: 10,
    length: 2,
    metadata: {},
    replicas: [],
    here: { rse: 'VEGA-SCRATCH', state, rule_id: null, rule: null }
  };
}

/** Answer the model's requests by route, as the server extension would. */
function serve(routes: Record<string, (init?: RequestInit) => unknown>): void {
  api.mockImplementation(async (endPoint: string, _query = {}, init = {}) => {
    const key = `${init.method ?? 'GET'} ${endPoint}`;
    const answer = routes[key] ?? routes[endPoint];
    if (!answer) {
      throw new ApiError(404, 'not_found', `no route ${key}`);
    }
    return answer(init) as never;
  });
}

function host(
  notebook: INotebookHandle | null = null,
  root: string | null = '/home/alice'
): IDataLakeHost {
  return {
    activeNotebook: () => notebook,
    openFolder: async () => undefined,
    serverRoot: () => root
  };
}

function notebook(): INotebookHandle & { attachments: IRucioAttachment[] } {
  const nb = {
    title: 'analysis.ipynb',
    attachments: [] as IRucioAttachment[],
    getAttachments: () => nb.attachments,
    setAttachments: (v: IRucioAttachment[]) => {
      nb.attachments = v;
    },
    kernelReady: async () => null
  };
  return nb;
}

afterEach(() => {
  api.mockReset();
  jest.useRealTimers();
});

describe('DataLakeModel', () => {
  it('loads the config and the sorted scopes, and picks the first scope', async () => {
    serve({ config: () => CONFIG, scopes: () => ({ scopes: ['user.alice', 'climate'] }) });
    const model = new DataLakeModel(host());
    await model.start();
    expect(model.configStatus).toEqual({ kind: 'ready' });
    expect(model.scopes).toEqual(['climate', 'user.alice']);
    expect(model.search.scope).toBe('climate');
    model.dispose();
  });

  it("shows the server's sentence when the config fails", async () => {
    serve({});
    api.mockRejectedValue(new ApiError(503, 'rucio_unreachable', 'Rucio cannot be reached.'));
    const model = new DataLakeModel(host());
    await model.start();
    expect(model.configStatus).toEqual({
      kind: 'error',
      message: 'Rucio cannot be reached.',
      code: 'rucio_unreachable'
    });
    model.dispose();
  });

  it('offers the lifetime choices of the settings up to the site maximum, live', async () => {
    serve({ config: () => CONFIG, scopes: () => ({ scopes: [] }) });
    const model = new DataLakeModel(host());
    expect(model.defaultLifetime).toBeNull(); // nothing before the server's config
    await model.start();
    expect(model.defaultLifetime).toBe(7);
    expect(model.lifetimeChoices).toEqual([1, 7, 14, 30]);
    let emitted = 0;
    model.changed.connect(() => emitted++);
    model.setSettings({ lifetimeChoices: [2, 60], defaultLifetimeDays: 3 });
    expect(emitted).toBe(1);
    expect(model.defaultLifetime).toBe(3);
    expect(model.lifetimeChoices).toEqual([2, 3]);
    model.setSettings({ defaultLifetimeDays: 365 }); // above the maximum: the site's default
    expect(model.defaultLifetime).toBe(7);
    model.dispose();
  });

  it('searches with the page size of the settings', async () => {
    const queries: Record<string, unknown>[] = [];
    api.mockImplementation(async (endPoint: string, query = {}) => {
      queries.push({ endPoint, ...query });
      return { items: [], next: null } as never;
    });
    const model = new DataLakeModel(host(), { pageSize: 50 });
    model.setSearch({ scope: 'climate', name: 'era5*' });
    model.runSearch();
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(queries[0]).toMatchObject({
      endPoint: 'dids',
      scope: 'climate',
      name: 'era5*',
      limit: 50
    });
    model.dispose();
  });

  it('polls while a replica is on its way, with the delays of the settings', async () => {
    jest.useFakeTimers();
    let state = 'REPLICATING';
    let asked = 0;
    serve({
      'dids/climate/era5': () => {
        asked++;
        return details(state);
      },
      'dids/climate/era5/paths': () => ({ items: [], total: 0, offset: 0, limit: 200 })
    });
    const model = new DataLakeModel(host(), { pollSeconds: 1, pollMaxSeconds: 1 });
    await model.openDid('climate', 'era5');
    expect(asked).toBe(1);
    await jest.advanceTimersByTimeAsync(1000);
    expect(asked).toBe(2);
    state = 'AVAILABLE';
    await jest.advanceTimersByTimeAsync(1000);
    expect(asked).toBe(3);
    await jest.advanceTimersByTimeAsync(10_000); // available: no more polls
    expect(asked).toBe(3);
    model.dispose();
  });

  it('attaches the opened DID to the notebook in rucio-jupyterlab format', async () => {
    serve({
      'dids/climate/era5': () => details('NOT_AVAILABLE'),
      'dids/climate/era5/content': () => ({ items: [], total: 0, offset: 0, limit: 200 })
    });
    const nb = notebook();
    const model = new DataLakeModel(host(nb));
    expect(model.attachToNotebook('era5').ok).toBe(false); // nothing opened yet
    await model.openDid('climate', 'era5');
    expect(model.attachToNotebook('1bad').message).toBe('"1bad" is not a Python variable name.');
    const out = model.attachToNotebook('era5');
    expect(out).toMatchObject({
      ok: true,
      message: 'climate:era5 is attached to analysis.ipynb as era5.'
    });
    expect(nb.attachments).toEqual([
      { did: 'climate:era5', variableName: 'era5', type: 'collection' }
    ]);
    await expect(out.injected).resolves.toBe(
      'analysis.ipynb has no kernel: era5 is set when one starts.'
    );
    model.dispose();
  });

  it('tells which local paths the file browser can show', () => {
    const model = new DataLakeModel(host(null, '/home/alice'));
    expect(model.browsable('/home/alice/scratch/era5')).toEqual({
      relative: 'scratch/era5',
      reason: null
    });
    expect(model.browsable('/scratch/era5').relative).toBeNull();
    expect(new DataLakeModel(host(null, null)).browsable('/x').reason).toBe(
      'The notebook server did not say where its root is.'
    );
  });

  it('keeps the rules as last seen when a refresh fails, so their actions stay at hand', async () => {
    let down = false;
    const rule = { id: 'r1', did: 'climate:era5', state: 'OK' };
    serve({
      rules: () => {
        if (down) {
          throw new ApiError(
            503,
            'rucio_unreachable',
            'The Rucio DataLake server cannot be reached.'
          );
        }
        return { rules: [rule], permissions: { extend: true, delete: true, reason: null } };
      }
    });
    const model = new DataLakeModel(host());
    await model.loadRules();
    down = true;
    await model.loadRules(false);
    expect(model.rulesStatus).toMatchObject({
      kind: 'error',
      message: expect.stringContaining('Rucio')
    });
    expect(model.rules).toEqual([rule]);
  });

  it('offers to sign in again once a call says the sign-in has ended, until Retry', async () => {
    serve({ config: () => CONFIG, scopes: () => ({ scopes: ['climate'] }) });
    const model = new DataLakeModel(host());
    let changes = 0;
    model.changed.connect(() => changes++);
    expect(model.signInAgain).toBeNull();
    signInAgain.emit('Your EGI Check-in sign-in has ended. Sign in to the hub again.');
    expect(model.signInAgain).toBe(
      'Your EGI Check-in sign-in has ended. Sign in to the hub again.'
    );
    expect(changes).toBe(1);
    await model.start();
    expect(model.signInAgain).toBeNull();
    model.dispose();
    signInAgain.emit('after dispose');
    expect(model.signInAgain).toBeNull();
  });
});
