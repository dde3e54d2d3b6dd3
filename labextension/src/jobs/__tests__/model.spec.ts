/**
 * @jest-environment jsdom
 */
import { nullTranslator } from '@jupyterlab/translation';

import { ApiError, jobsAPI, streamLog } from '../../request';
import { IJob } from '../../tokens';
import { duration, IJobsHost, JobsModel, resourcesText, sessionText } from '../model';

jest.mock('../../request', () => {
  const actual = jest.requireActual('../../request');
  return { ...actual, jobsAPI: jest.fn(), streamLog: jest.fn() };
});

const api = jobsAPI as jest.MockedFunction<typeof jobsAPI>;
const stream = streamLog as jest.MockedFunction<typeof streamLog>;
const trans = nullTranslator.load('intertwin_hub');

function job(patch: Partial<IJob> = {}): IJob {
  return {
    id: 'uid-1',
    user: 'alice',
    kind: 'notebook',
    site: 'vega',
    site_name: 'Vega',
    pod: 'jupyter-alice--lab',
    server_name: 'lab',
    notebook_path: null,
    cell_id: null,
    state: 'running',
    sentence: 'running on vega-vk',
    node: 'vega-vk',
    batch_job: '1003',
    reason: null,
    exit_code: null,
    note: null,
    resources: { cpu: 16, memory: 64 * 2 ** 30, gpus: 2 },
    image: null,
    submitted: '2026-12-04T12:00:00Z',
    started: '2026-12-04T12:00:12Z',
    finished: null,
    history: [],
    ...patch
  };
}

interface IFakeHost extends IJobsHost {
  notes: {
    message: string;
    type: string;
    action: { label: string; callback: () => void } | null;
  }[];
  confirms: { title: string; body: string }[];
  answer: boolean;
  opened: { path: string; cellId: string | null }[];
  shown: number;
}

function host(user = 'alice', serverName = 'lab'): IFakeHost {
  const h: IFakeHost = {
    notes: [],
    confirms: [],
    answer: true,
    opened: [],
    shown: 0,
    session: () => ({ user, serverName }),
    site: async () => ({
      slug: 'vega',
      title: 'Offload to Vega HPC - dev VO',
      scratch_rse: 'VEGA-DCACHE',
      scratch_path: '/scratch',
      name: 'Vega',
      gpu_model: 'A100'
    }),
    confirm: async (title, body) => {
      h.confirms.push({ title, body });
      return h.answer;
    },
    notify: (message, type, action) => {
      h.notes.push({ message, type, action });
    },
    openCell: async (path, cellId) => {
      h.opened.push({ path, cellId });
    },
    showPanel: () => {
      h.shown++;
    }
  };
  return h;
}

type Query = Record<string, string | number | null | undefined>;

/** Answer the model's requests by route, as the server extension would; records each ask. */
function serve(routes: Record<string, (query: Query, init: RequestInit) => unknown>): {
  asked: { key: string; query: Query }[];
} {
  const asked: { key: string; query: Query }[] = [];
  api.mockImplementation(async (endPoint: string, query: Query = {}, init: RequestInit = {}) => {
    const key = `${init.method ?? 'GET'} ${endPoint}`;
    asked.push({ key, query });
    const answer = routes[key];
    if (!answer) {
      throw new ApiError(404, 'not_found', `no route ${key}`);
    }
    return answer(query, init) as never;
  });
  return { asked };
}

afterEach(() => {
  api.mockReset();
  stream.mockReset();
});

describe('the list', () => {
  it('lists my active jobs, running first, and pages the history with the cursor', async () => {
    const running = job();
    const old1 = job({ id: 'old-1', state: 'succeeded', sentence: 'succeeded', server_name: 'a' });
    const old2 = job({ id: 'old-2', state: 'failed', sentence: 'failed', server_name: 'b' });
    const { asked } = serve({
      'GET jobs': q =>
        q.state === 'active'
          ? { jobs: [running], next: null }
          : q.cursor === 'c1'
            ? { jobs: [old2], next: null }
            : { jobs: [old1], next: 'c1' }
    });
    const model = new JobsModel(host(), { pageSize: 1 });
    await model.refresh();
    await model.loadHistory(true);
    expect(model.shownActive.map(j => j.id)).toEqual(['uid-1']);
    expect(model.shownHistory.map(j => j.id)).toEqual(['old-1']);
    expect(model.historyNext).toBe('c1');
    await model.loadHistory();
    expect(model.shownHistory.map(j => j.id)).toEqual(['old-1', 'old-2']);
    expect(model.historyNext).toBeNull();
    const history = asked.filter(a => a.query.state !== 'active');
    expect(history.map(a => [a.query.cursor ?? null, a.query.limit])).toEqual([
      [null, 1],
      ['c1', 1]
    ]);
    // the history asks only for ended jobs
    expect(history[0].query.state).toBe('succeeded,failed,cancelled,lost');
  });

  it('passes site, kind and an ended state to the service; filters active jobs itself', async () => {
    const vega = job();
    const kbfi = job({
      id: 'k',
      site: 'kbfi',
      site_name: 'KBFI',
      kind: 'batch-cell',
      node: 'kbfi-vk',
      batch_job: null,
      sentence: 'running on kbfi-vk'
    });
    const { asked } = serve({
      'GET jobs': q =>
        q.state === 'active' ? { jobs: [vega, kbfi], next: null } : { jobs: [], next: null }
    });
    const model = new JobsModel(host());
    await model.refresh();
    model.setFilters({ site: 'kbfi' });
    expect(model.shownActive.map(j => j.id)).toEqual(['k']);
    model.setFilters({ site: '', kind: 'notebook' });
    expect(model.shownActive.map(j => j.id)).toEqual(['uid-1']);
    model.setFilters({ kind: '', state: 'failed' });
    expect(model.shownActive).toEqual([]); // an ended state: the history alone
    await new Promise(r => setTimeout(r, 0));
    const last = asked[asked.length - 1].query;
    expect(last.state).toBe('failed');
    model.setFilters({ state: 'queued' });
    expect(model.shownHistory).toEqual([]); // an active state: no history asked
    model.setFilters({ state: '', search: 'KBFI cell' });
    expect(model.shownActive.map(j => j.id)).toEqual(['k']);
    model.setFilters({ search: '1003 vega-vk' });
    expect(model.shownActive.map(j => j.id)).toEqual(['uid-1']);
  });

  it('shows a job that ended between the active ask and the history ask once, as ended', async () => {
    const cell = (id: string, state = 'running'): IJob =>
      job({
        id,
        kind: 'batch-cell',
        server_name: '',
        notebook_path: 'a.ipynb',
        cell_id: id,
        state
      });
    let active = [cell('a'), cell('b')];
    let ended: IJob[] = [];
    serve({
      'GET jobs': q =>
        q.state === 'active' ? { jobs: active, next: null } : { jobs: ended, next: null },
      'GET jobs/a': () => cell('a', 'succeeded'),
      'GET jobs/b': () => cell('b', 'succeeded')
    });
    const model = new JobsModel(host());
    model.setVisible(true);
    await model.refresh();
    // a ended; the poll still sees b running, and b ends before the history is asked for
    active = [cell('b')];
    ended = [cell('b', 'succeeded'), cell('a', 'succeeded')];
    await model.refresh();
    expect(model.shownHistory.map(j => j.id)).toEqual(['b', 'a']);
    expect(model.shownActive.map(j => j.id)).toEqual([]);
    // the next poll sees b gone and asks how it ended; it is still shown once
    active = [];
    await model.refresh();
    expect([...model.shownActive, ...model.shownHistory].map(j => j.id)).toEqual(['b', 'a']);
  });

  it('asks only for my jobs, even as an admin (who may list everyone)', async () => {
    const { asked } = serve({ 'GET jobs': () => ({ jobs: [], next: null }) });
    const model = new JobsModel(host('oper'));
    await model.refresh();
    await model.loadHistory(true);
    expect(asked.map(a => a.query.user)).toEqual(['oper', 'oper']);
  });

  it('polls at once, then every few seconds while shown and less often while closed', async () => {
    jest.useFakeTimers();
    try {
      let fail = false;
      const { asked } = serve({
        'GET jobs': q => {
          if (fail && q.state === 'active') {
            throw new ApiError(
              503,
              'service_unreachable',
              'The intertwin service is not reachable.'
            );
          }
          return { jobs: [], next: null };
        },
        'GET sites': () => ({ sites: [] })
      });
      const model = new JobsModel(host(), {
        pollSeconds: 5,
        pollHiddenSeconds: 30,
        pollMaxSeconds: 60
      });
      const polls = (): number => asked.filter(a => a.query.state === 'active').length;
      model.start(); // at start-up, the panel closed
      await jest.advanceTimersByTimeAsync(100);
      expect(polls()).toBe(1);
      await jest.advanceTimersByTimeAsync(29_000);
      expect(polls()).toBe(1);
      await jest.advanceTimersByTimeAsync(2_000);
      expect(polls()).toBe(2);
      model.setVisible(true); // shown: at once, then every 5 s
      await jest.advanceTimersByTimeAsync(100);
      expect(polls()).toBe(3);
      await jest.advanceTimersByTimeAsync(10_500);
      expect(polls()).toBe(5);
      // the service fails: the poll backs off (fewer asks than every 5 s), and says so
      fail = true;
      const before = polls();
      await jest.advanceTimersByTimeAsync(120_000);
      expect(polls() - before).toBeGreaterThanOrEqual(2);
      expect(polls() - before).toBeLessThan(24);
      expect(model.status.kind).toBe('error');
      fail = false;
      model.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('says the service is not reachable, and the poll sees the failure', async () => {
    serve({});
    api.mockRejectedValue(
      new ApiError(
        503,
        'service_unreachable',
        'The intertwin service is not reachable from this JupyterLab session.'
      )
    );
    const model = new JobsModel(host());
    await expect(model.refresh()).rejects.toThrow('not reachable');
    expect(model.status).toEqual({
      kind: 'error',
      code: 'service_unreachable',
      message: 'The intertwin service is not reachable from this JupyterLab session.'
    });
  });
});

describe('notifications', () => {
  it('notifies once when one of my jobs ends, with an action that opens its logs', async () => {
    let active = [job(), job({ id: 'uid-2', server_name: 'second' })];
    serve({
      'GET jobs': q =>
        q.state === 'active' ? { jobs: active, next: null } : { jobs: [], next: null },
      'GET jobs/uid-2': () =>
        job({
          id: 'uid-2',
          server_name: 'second',
          state: 'failed',
          sentence: 'failed at Vega',
          exit_code: 3,
          reason: 'Error'
        })
    });
    stream.mockResolvedValue(undefined);
    const h = host();
    const model = new JobsModel(h);
    await model.refresh();
    expect(h.notes).toEqual([]); // the first look notifies nothing
    active = [job()];
    await model.refresh();
    expect(h.notes.map(n => [n.type, n.message])).toEqual([
      ['error', 'Your server "second" at Vega failed: failed at Vega (exit code 3, Error).']
    ]);
    h.notes[0].action!.callback();
    expect(h.shown).toBe(1);
    expect(model.log?.job.id).toBe('uid-2');
    expect(stream.mock.calls[0][1]).toEqual({ tail: 1000, follow: false }); // ended: last lines
    await model.refresh();
    expect(h.notes).toHaveLength(1);
  });

  it("an admin's list holds everyone's jobs: only mine are notified", async () => {
    let active = [job({ id: 'bob-1', user: 'bob' })];
    serve({
      'GET jobs': q =>
        q.state === 'active' ? { jobs: active, next: null } : { jobs: [], next: null },
      'GET jobs/bob-1': () => job({ id: 'bob-1', user: 'bob', state: 'succeeded' })
    });
    const h = host('oper');
    const model = new JobsModel(h);
    await model.refresh();
    active = [];
    await model.refresh();
    expect(h.notes).toEqual([]);
  });
});

describe('cancel', () => {
  it('asks first, naming the job and its site, then cancels', async () => {
    const { asked } = serve({
      'DELETE jobs/uid-1': () => job({ sentence: 'cancelling' }),
      'GET jobs': () => ({ jobs: [], next: null })
    });
    const h = host();
    const model = new JobsModel(h);
    h.answer = false;
    expect(await model.cancel(job())).toBe(false);
    expect(asked.some(a => a.key.startsWith('DELETE'))).toBe(false);
    expect(h.confirms[0].title).toBe('Cancel server "lab" at Vega?');
    expect(h.confirms[0].body).toContain('running on vega-vk');
    h.answer = true;
    expect(await model.cancel(job())).toBe(true);
    expect(asked.filter(a => a.key === 'DELETE jobs/uid-1')).toHaveLength(1);
  });

  it("shows the service's sentence when the cancel is refused", async () => {
    serve({});
    api.mockRejectedValue(
      new ApiError(409, 'already_ended', 'This job has already ended (succeeded).')
    );
    const model = new JobsModel(host());
    expect(await model.cancel(job())).toBe(false);
    expect(model.actionStatus).toEqual({
      kind: 'error',
      code: 'already_ended',
      message: 'This job has already ended (succeeded).'
    });
  });
});

describe('logs', () => {
  it("follows a running job's log as it arrives and stops when closed", async () => {
    let push: (t: string) => void = () => undefined;
    let signal: AbortSignal | null = null;
    stream.mockImplementation((_id, _q, onText, s) => {
      push = onText;
      signal = s;
      return new Promise(() => undefined);
    });
    const model = new JobsModel(host(), { logTailLines: 50 });
    model.openLog(job());
    expect(stream.mock.calls[0][1]).toEqual({ tail: 50, follow: true });
    expect(model.log?.following).toBe(true);
    push('line 1\n');
    push('line 2\n');
    expect(model.log?.text).toBe('line 1\nline 2\n');
    model.closeLog();
    expect(model.log).toBeNull();
    expect(signal!.aborted).toBe(true);
    push('late\n'); // a piece that was on its way changes nothing
    expect(model.log).toBeNull();
  });

  it("shows the server's sentence when the log cannot be read", async () => {
    stream.mockRejectedValue(
      new ApiError(409, 'already_ended', "The job's pod is gone, and its log with it.")
    );
    const model = new JobsModel(host());
    model.openLog(job({ state: 'cancelled' }));
    await new Promise(r => setTimeout(r, 0));
    expect(model.log?.status).toEqual({
      kind: 'error',
      code: 'already_ended',
      message: "The job's pod is gone, and its log with it."
    });
  });
});

describe('this session', () => {
  it('finds its own job and says where it runs', async () => {
    const mine = job();
    serve({
      'GET jobs': () => ({ jobs: [job({ id: 'x', server_name: 'other' }), mine], next: null })
    });
    const h = host('alice', 'lab');
    const model = new JobsModel(h);
    await model.refresh();
    expect(model.sessionJob?.id).toBe('uid-1');
    const site = await h.site();
    expect(sessionText(model.sessionJob, site, trans)).toBe('Vega · 2 × A100 · batch job 1003');
    expect(sessionText(null, site, trans)).toBe('Vega');
    expect(
      sessionText(
        job({ resources: { cpu: 2, memory: null, gpus: 0 }, batch_job: null }),
        site,
        trans
      )
    ).toBe('Vega');
    expect(sessionText(null, null, trans)).toBeNull();
  });

  it('opens a batch cell at its cell', async () => {
    const h = host();
    const model = new JobsModel(h);
    await model.openCell(
      job({ kind: 'batch-cell', notebook_path: 'work/train.ipynb', cell_id: 'c-42' })
    );
    expect(h.opened).toEqual([{ path: 'work/train.ipynb', cellId: 'c-42' }]);
  });
});

describe('words', () => {
  it('says resources and durations for people', () => {
    expect(resourcesText(job(), trans)).toBe('16 CPU · 64 GiB · 2 GPUs');
    expect(
      resourcesText(job({ resources: { cpu: 0.5, memory: 512 * 2 ** 20, gpus: 1 } }), trans)
    ).toBe('0.5 CPU · 512 MiB · 1 GPU');
    const j = job({ started: '2026-12-04T12:00:00Z', finished: '2026-12-04T14:05:00Z' });
    expect(duration(j)).toBe('2 h 05 min');
    expect(
      duration(job({ started: '2026-12-04T12:00:00Z', finished: '2026-12-04T12:03:20Z' }))
    ).toBe('3 min 20 s');
    expect(
      duration(
        job({ started: null, submitted: '2026-12-04T12:00:00Z' }),
        Date.parse('2026-12-04T12:00:12Z')
      )
    ).toBe('12 s');
  });
});
