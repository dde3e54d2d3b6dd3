/**
 * @jest-environment jsdom
 */
import { ApiError, jobsAPI } from '../../request';
import { IBudget, IUsageJob, IUsageSummary, IUsageTotals } from '../../tokens';
import { hours, IUsageHost, measuredCpuHours, seriesPeriod, UsageModel } from '../model';

jest.mock('../../request', () => {
  const actual = jest.requireActual('../../request');
  return { ...actual, jobsAPI: jest.fn() };
});

const api = jobsAPI as jest.MockedFunction<typeof jobsAPI>;

const NOW = new Date('2026-12-04T15:00:00Z');
const PERIOD = { from: '2026-12-01T00:00:00Z', to: '2027-01-01T00:00:00Z', user: 'alice' };

function totals(patch: Partial<IUsageTotals> = {}): IUsageTotals {
  return {
    cpu_core_hours: 0,
    memory_gb_hours: 0,
    wall_hours: 0,
    wall_seconds: 0,
    gpu_hours: {},
    jobs: 0,
    estimated: false,
    ...patch
  };
}

const VEGA = totals({
  cpu_core_hours: 32,
  memory_gb_hours: 128,
  wall_hours: 2,
  wall_seconds: 7200,
  gpu_hours: { A100: 4 },
  jobs: 1
});
const KBFI = totals({ cpu_core_hours: 48, memory_gb_hours: 96, wall_hours: 6, jobs: 2 });

const SUMMARY: IUsageSummary = {
  ...PERIOD,
  totals: totals({
    cpu_core_hours: 80,
    memory_gb_hours: 224,
    wall_hours: 8,
    gpu_hours: { A100: 4 },
    jobs: 3
  }),
  sites: [
    { ...KBFI, site: 'kbfi', site_name: 'KBFI' },
    { ...VEGA, site: 'vega', site_name: 'Vega' }
  ]
};

const TOP: IUsageJob = {
  ...VEGA,
  id: 'uid-vega',
  user: 'alice',
  vo: 'dev.intertwin.eu',
  site: 'vega',
  site_name: 'Vega',
  kind: 'notebook',
  start: '2026-12-04T12:00:00Z',
  end: '2026-12-04T14:00:00Z',
  cpu: 16,
  gpus: 2,
  gpu_model: 'A100'
};

const BUDGET: IBudget = {
  site: 'psnc',
  site_name: 'PSNC',
  vo: 'dev.intertwin.eu',
  period: 'month',
  from: PERIOD.from,
  to: PERIOD.to,
  gpu_hours: { used: 460, budget: 500 },
  cpu_hours: null,
  state: 'warning',
  sentence: 'The dev.intertwin.eu VO has used 92 % of its 500 GPU hours at PSNC for December 2026.'
};

type Query = Record<string, string | number | null | undefined>;

function serve(routes: Record<string, (query: Query) => unknown>): {
  asked: { route: string; query: Query }[];
} {
  const asked: { route: string; query: Query }[] = [];
  api.mockImplementation(async (endPoint: string, query: Query = {}) => {
    asked.push({ route: endPoint, query });
    const answer = routes[endPoint];
    if (!answer) {
      throw new ApiError(404, 'not_found', `no route ${endPoint}`);
    }
    return answer(query) as never;
  });
  return { asked };
}

function usual(patch: Record<string, (query: Query) => unknown> = {}) {
  return serve({
    usage: () => SUMMARY,
    'usage/jobs': () => ({ ...PERIOD, jobs: [TOP] }),
    budgets: () => ({ budgets: [BUDGET] }),
    'usage/series': q => ({
      ...PERIOD,
      unit: q.unit,
      points: [
        { ...VEGA, start: '2026-12-04T00:00:00Z', site: 'vega' },
        { ...KBFI, start: '2026-12-04T00:00:00Z', site: 'kbfi' },
        { ...KBFI, start: '2026-12-03T00:00:00Z', site: 'psnc' }
      ]
    }),
    ...patch
  });
}

function host(): IUsageHost & { opened: string[] } {
  const h = {
    opened: [] as string[],
    user: () => 'alice',
    openJob: (job: IUsageJob) => {
      h.opened.push(job.id);
    },
    now: () => NOW
  };
  return h;
}

afterEach(() => api.mockReset());

describe('this month', () => {
  it("shows the totals by site, the busiest first, with GPU hours by model and the VO's budget", async () => {
    const { asked } = usual();
    const model = new UsageModel(host(), { topJobs: 5 });
    await model.refresh();
    expect(model.status).toEqual({ kind: 'ready' });
    expect(model.isEmpty).toBe(false);
    expect(model.sites.map(s => [s.siteName, s.gpuHours, s.cpuCoreHours])).toEqual([
      ['Vega', [{ model: 'A100', hours: 4 }], 32],
      ['KBFI', [], 48]
    ]);
    expect(model.jobs.map(j => j.id)).toEqual(['uid-vega']);
    const bars = model.budgetBars;
    expect(bars).toHaveLength(1);
    expect(bars[0]).toMatchObject({ what: 'gpu', used: 460, total: 500, fraction: 0.92 });
    expect(bars[0].budget.state).toBe('warning');
    // an admin names themself: the service lists everyone's otherwise
    const jobsAsk = asked.find(a => a.route === 'usage/jobs')!;
    expect(jobsAsk.query).toMatchObject({ user: 'alice', limit: 5 });
    expect(asked.find(a => a.route === 'usage')!.query).toMatchObject({ user: 'alice' });
    expect(model.csvQuery).toBe(
      `?from=${encodeURIComponent(PERIOD.from)}&to=${encodeURIComponent(PERIOD.to)}`
    );
  });

  it('is empty for a new user, and says nothing is used yet', async () => {
    usual({
      usage: () => ({ ...PERIOD, totals: totals(), sites: [] }),
      'usage/jobs': () => ({ ...PERIOD, jobs: [] }),
      budgets: () => ({ budgets: [] }),
      'usage/series': () => ({ ...PERIOD, unit: 'day', points: [] })
    });
    const model = new UsageModel(host());
    await model.refresh();
    expect(model.isEmpty).toBe(true);
    expect(model.sites).toEqual([]);
    expect(model.budgetBars).toEqual([]);
  });

  it("says the service is not reachable, in the server's sentence, and rejects so the poll backs off", async () => {
    const sentence =
      'The intertwin service is not reachable from this JupyterLab session, so your usage and budgets cannot be shown now.';
    api.mockRejectedValue(new ApiError(503, 'service_unreachable', sentence));
    const model = new UsageModel(host());
    await expect(model.refresh()).rejects.toBeInstanceOf(ApiError);
    expect(model.status).toEqual({ kind: 'error', message: sentence, code: 'service_unreachable' });
    expect(model.summary).toBeNull();
  });

  it('still shows the usage when only the budgets fail', async () => {
    usual({
      budgets: () => {
        throw new ApiError(500, 'internal_error', 'The budgets could not be read.');
      }
    });
    const model = new UsageModel(host());
    await model.refresh();
    expect(model.status.kind).toBe('ready');
    expect(model.budgetStatus).toMatchObject({
      kind: 'error',
      message: 'The budgets could not be read.'
    });
    expect(model.budgetBars).toEqual([]);
  });

  it('an exhausted budget is a full bar', async () => {
    usual({
      budgets: () => ({
        budgets: [
          {
            ...BUDGET,
            gpu_hours: { used: 512, budget: 500 },
            cpu_hours: { used: 10, budget: 1000 },
            state: 'exhausted'
          }
        ]
      })
    });
    const model = new UsageModel(host());
    await model.refresh();
    expect(model.budgetBars.map(b => [b.what, b.fraction])).toEqual([
      ['gpu', 1],
      ['cpu', 0.01]
    ]);
  });

  it('opens the Jobs panel at a job of the table', async () => {
    usual();
    const h = host();
    const model = new UsageModel(h);
    await model.refresh();
    model.openJob(model.jobs[0]);
    expect(h.opened).toEqual(['uid-vega']);
  });
});

describe('the chart', () => {
  it('stacks GPU hours by site name per day of this month', async () => {
    const { asked } = usual();
    const model = new UsageModel(host());
    await model.refresh();
    const series = asked.find(a => a.route === 'usage/series')!;
    expect(series.query).toMatchObject({
      unit: 'day',
      from: '2026-12-01T00:00:00.000Z',
      to: '2027-01-01T00:00:00.000Z'
    });
    expect(model.shownMetric).toBe('gpu_hours');
    const spec = model.chartSpec() as any;
    expect(spec.$schema).toContain('vega-lite/v5');
    expect(spec.mark.type).toBe('bar');
    expect(spec.encoding.y).toMatchObject({ aggregate: 'sum', stack: 'zero', title: 'GPU hours' });
    expect(spec.encoding.color.field).toBe('site');
    expect(spec.data.values).toEqual([
      { start: '2026-12-04T00:00:00Z', site: 'Vega', value: 4 },
      { start: '2026-12-04T00:00:00Z', site: 'KBFI', value: 0 },
      // a site only the budgets name still gets its name
      { start: '2026-12-03T00:00:00Z', site: 'PSNC', value: 0 }
    ]);
    model.setMetric('cpu_core_hours');
    expect((model.chartSpec() as any).data.values.map((v: any) => v.value)).toEqual([32, 48, 48]);
  });

  it('asks again by week or month, over the last 12 of them, and keeps only the latest answer', async () => {
    let release: (() => void) | null = null;
    const { asked } = usual({
      'usage/series': q =>
        q.unit === 'week'
          ? new Promise(resolve => {
              release = () => resolve({ ...PERIOD, unit: 'week', points: [] });
            })
          : { ...PERIOD, unit: q.unit, points: [] }
    });
    const model = new UsageModel(host());
    await model.refresh();
    model.setUnit('week');
    expect(model.seriesStatus.kind).toBe('loading');
    model.setUnit('month');
    await new Promise(r => setTimeout(r, 0));
    expect(model.series!.unit).toBe('month');
    release!(); // the week's late answer is not shown
    await new Promise(r => setTimeout(r, 0));
    expect(model.unit).toBe('month');
    expect(model.series!.unit).toBe('month');
    const weeks = asked.filter(a => a.route === 'usage/series' && a.query.unit === 'week');
    // 2026-12-04 is a Friday: from the Monday 11 weeks before this week's
    expect(weeks[0].query.from).toBe('2026-09-14T00:00:00.000Z');
    expect(seriesPeriod('month', NOW)).toEqual({
      from: '2026-01-01T00:00:00.000Z',
      to: '2027-01-01T00:00:00.000Z'
    });
  });
});

describe('before the panel is shown', () => {
  it("asks nothing when the settings' unit arrives, and the first refresh asks with it", async () => {
    const { asked } = usual();
    const model = new UsageModel(host());
    model.setUnit('month');
    expect(asked).toEqual([]);
    await model.refresh();
    expect(asked.filter(a => a.route === 'usage/series').map(a => a.query.unit)).toEqual(['month']);
  });
});

describe('figures', () => {
  it("keep the site's measured CPU time apart from the allocation", () => {
    expect(measuredCpuHours(TOP)).toBeNull();
    const measured = (cpu_seconds: number | null): IUsageJob => ({
      ...TOP,
      measured: { source: 'slurm-sacct', cpu_seconds, max_rss_bytes: null, wall_seconds: 7200 }
    });
    expect(measuredCpuHours(measured(5400))).toBe(1.5);
    // the job completion log measures wall time only
    expect(measuredCpuHours(measured(null))).toBeNull();
  });

  it('are rounded for reading', () => {
    expect([hours(0.254), hours(7.5), hours(12.345), hours(480.4)]).toEqual([
      '0.25',
      '7.50',
      '12.3',
      '480'
    ]);
  });
});
