import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { Status } from '../jobs/model';
import { errorMessage, jobsAPI } from '../request';
import {
  IBudget,
  IUsageJob,
  IUsageJobs,
  IUsagePoint,
  IUsageSeries,
  IUsageSummary,
  IUsageTotals,
  TRANSLATION_DOMAIN,
  UsageUnit
} from '../tokens';

/** What the chart stacks: one of the totals' figures (GPU hours: every model together). */
export type UsageMetric = 'gpu_hours' | 'cpu_core_hours' | 'memory_gb_hours' | 'wall_hours';
export const METRICS: readonly UsageMetric[] = [
  'gpu_hours',
  'cpu_core_hours',
  'memory_gb_hours',
  'wall_hours'
];
export const UNITS: readonly UsageUnit[] = ['day', 'week', 'month'];

/** The Usage settings (labextension/schema/usage.json). */
export interface IUsageSettings {
  /** the chart's buckets when the panel opens */
  unit: UsageUnit;
  /** how many of the most expensive jobs the table lists */
  topJobs: number;
  /** how often the figures are asked for again while the panel is shown, in seconds */
  pollSeconds: number;
}

export const DEFAULT_SETTINGS: IUsageSettings = { unit: 'day', topJobs: 10, pollSeconds: 60 };

/** What the model needs from JupyterLab, so it stays testable without a shell. */
export interface IUsageHost {
  /** this session's user (JupyterHub's page config), null outside a hub */
  user(): string | null;
  /** bring the Jobs panel forward at this job */
  openJob(job: IUsageJob): void;
  /** now, for the chart's period (tests fix it) */
  now?(): Date;
}

/** One row of the totals by site, with GPU hours by model. */
export interface ISiteTotals {
  site: string;
  siteName: string;
  cpuCoreHours: number;
  gpuHours: { model: string; hours: number }[];
  memoryGbHours: number;
  wallHours: number;
  jobs: number;
  estimated: boolean;
}

/** One budget bar: a VO's allowance of GPU or CPU-core hours at a site this period. */
export interface IBudgetBar {
  key: string;
  budget: IBudget;
  what: 'gpu' | 'cpu';
  used: number;
  total: number;
  /** used / total, 0..1 (cut at 1) */
  fraction: number;
}

/** "0.25", "7.50", "12.5", "480": two decimals below 10 h, one below 100 h, none above. */
/**
 * The CPU hours the site measured a job using (Slurm's accounting, imported by the operator),
 * shown beside its allocation and never added to it; null when the site measured none.
 */
export function measuredCpuHours(job: IUsageJob): number | null {
  const seconds = job.measured?.cpu_seconds;
  return seconds === null || seconds === undefined ? null : seconds / 3600;
}

export function hours(h: number): string {
  if (h >= 100) {
    return h.toFixed(0);
  }
  return h >= 10 ? h.toFixed(1) : h.toFixed(2);
}

/** The sum of a totals' GPU hours over every GPU model. */
export function gpuHours(t: Pick<IUsageTotals, 'gpu_hours'>): number {
  return Object.values(t.gpu_hours).reduce((a, b) => a + b, 0);
}

function metricOf(t: IUsageTotals, metric: UsageMetric): number {
  return metric === 'gpu_hours' ? gpuHours(t) : t[metric];
}

/** The first of a month, UTC, `back` months before `now`'s. */
function monthStart(now: Date, back = 0): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
}

/**
 * The chart's period for a unit (the service's `from`/`to`): days of this month, the last 12
 * ISO weeks (from a Monday), or the last 12 months; each up to the first of next month.
 */
export function seriesPeriod(unit: UsageUnit, now: Date): { from: string; to: string } {
  const to = monthStart(now, -1);
  let from: Date;
  if (unit === 'day') {
    from = monthStart(now);
  } else if (unit === 'week') {
    const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const sinceMonday = (today.getUTCDay() + 6) % 7;
    from = new Date(today.getTime() - (sinceMonday + 11 * 7) * 86_400_000);
  } else {
    from = monthStart(now, 11);
  }
  return { from: from.toISOString(), to: to.toISOString() };
}

/**
 * The Usage panel's state: this month's usage by site, a series for the chart (day, week or
 * month buckets), the most expensive jobs and my VOs' budgets, asked for again every minute
 * while the panel is shown (`@lumino/polling`, nothing while it is closed or the tab hidden).
 */
export class UsageModel {
  constructor(
    readonly host: IUsageHost,
    settings: Partial<IUsageSettings> = {},
    translator: ITranslator = nullTranslator
  ) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.unit = this.settings.unit;
    this.trans = translator.load(TRANSLATION_DOMAIN);
  }

  readonly trans: TranslationBundle;
  settings: IUsageSettings;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** this month's figures: loading at first, then ready, or the service's failure */
  status: Status = { kind: 'idle' };
  summary: IUsageSummary | null = null;
  jobs: IUsageJob[] = [];
  budgets: IBudget[] = [];
  /** the budgets' own failure (the usage may still be shown) */
  budgetStatus: Status = { kind: 'idle' };
  unit: UsageUnit;
  metric: UsageMetric | null = null;
  series: IUsageSeries | null = null;
  seriesStatus: Status = { kind: 'idle' };

  setSettings(settings: Partial<IUsageSettings>): void {
    const before = this.settings;
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    if (this._poll) {
      this._poll.frequency = this._frequency();
    }
    if (before.topJobs !== this.settings.topJobs && this.status.kind !== 'idle') {
      void this.refresh();
    }
    this._emit();
  }

  /** A new user: nothing counted this month, no job listed. */
  get isEmpty(): boolean {
    return this.summary !== null && this.summary.totals.jobs === 0 && this.jobs.length === 0;
  }

  /** This month's totals by site, the busiest (GPU hours, then CPU-core hours) first. */
  get sites(): ISiteTotals[] {
    if (!this.summary) {
      return [];
    }
    return [...this.summary.sites]
      .sort((a, b) => gpuHours(b) - gpuHours(a) || b.cpu_core_hours - a.cpu_core_hours || 0)
      .map(s => ({
        site: s.site,
        siteName: s.site_name,
        cpuCoreHours: s.cpu_core_hours,
        // every model the service lists, a short session's 0.000 h too: it had the GPUs
        gpuHours: Object.entries(s.gpu_hours)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([model, h]) => ({ model, hours: h })),
        memoryGbHours: s.memory_gb_hours,
        wallHours: s.wall_hours,
        jobs: s.jobs,
        estimated: s.estimated
      }));
  }

  /** One bar per budgeted figure (GPU hours, CPU-core hours) of each budget. */
  get budgetBars(): IBudgetBar[] {
    const bars: IBudgetBar[] = [];
    for (const b of this.budgets) {
      for (const what of ['gpu', 'cpu'] as const) {
        const part = what === 'gpu' ? b.gpu_hours : b.cpu_hours;
        if (part) {
          bars.push({
            key: `${b.site}|${b.vo}|${b.period}|${what}`,
            budget: b,
            what,
            used: part.used,
            total: part.budget,
            fraction: part.budget > 0 ? Math.min(1, part.used / part.budget) : 1
          });
        }
      }
    }
    return bars;
  }

  /** The figure the chart stacks: the user's pick, else GPU hours when there are some. */
  get shownMetric(): UsageMetric {
    if (this.metric) {
      return this.metric;
    }
    return this.summary && gpuHours(this.summary.totals) > 0 ? 'gpu_hours' : 'cpu_core_hours';
  }

  /** The metric's words for people (the chart's axis, the switch). */
  metricLabel(metric: UsageMetric): string {
    const t = this.trans;
    return {
      gpu_hours: t.__('GPU hours'),
      cpu_core_hours: t.__('CPU-core hours'),
      memory_gb_hours: t.__('Memory GB-hours'),
      wall_hours: t.__('Wall hours')
    }[metric];
  }

  /**
   * The chart as a Vega-Lite spec: a bar per bucket, stacked by site (the site's name), of the
   * shown metric. Null before the series arrived.
   */
  chartSpec(): Record<string, unknown> | null {
    if (!this.series) {
      return null;
    }
    const metric = this.shownMetric;
    const names = this._siteNames();
    const values = this.series.points.map((p: IUsagePoint) => ({
      start: p.start,
      site: names.get(p.site) ?? p.site,
      value: Math.round(metricOf(p, metric) * 1000) / 1000
    }));
    const timeUnit = { day: 'utcyearmonthdate', week: 'utcyearmonthdate', month: 'utcyearmonth' }[
      this.series.unit
    ];
    const label = this.metricLabel(metric);
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      description: label,
      // the panel sets the width it measured; the legend goes below to leave the bars room
      height: 160,
      autosize: { type: 'fit', contains: 'padding' },
      data: { values },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: {
          field: 'start',
          type: 'ordinal',
          timeUnit,
          title: null,
          axis: { labelAngle: -45 }
        },
        y: { field: 'value', type: 'quantitative', aggregate: 'sum', stack: 'zero', title: label },
        color: {
          field: 'site',
          type: 'nominal',
          title: this.trans.__('Site'),
          legend: { orient: 'bottom', direction: 'horizontal' }
        }
      }
    };
  }

  /** The CSV download's query: this month, as the figures shown (the service's default). */
  get csvQuery(): string {
    return this.summary
      ? `?${new URLSearchParams({ from: this.summary.from, to: this.summary.to })}`
      : '';
  }

  /** Start: load at once, then poll while the panel is shown. */
  start(): void {
    if (this._poll) {
      return;
    }
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: this._frequency(),
      standby: () => !this._visible || 'when-hidden',
      name: 'intertwin:usage'
    });
    void this._poll.start();
  }

  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible && this._poll) {
      void this._poll.refresh();
    }
  }

  /**
   * Ask for this month's usage, the most expensive jobs, the budgets and the chart's series.
   * Rejects when the service fails, so the poll backs off.
   */
  async refresh(): Promise<void> {
    if (!this.summary) {
      this.status = { kind: 'loading' };
      this._emit();
    }
    const user = this.host.user();
    const budgets = jobsAPI<{ budgets: IBudget[] }>('budgets')
      .then(b => {
        this.budgets = b.budgets;
        this.budgetStatus = { kind: 'ready' };
      })
      .catch(e => {
        this.budgetStatus = statusOf(e);
      });
    const series = this.loadSeries(false);
    try {
      // `user`: an admin names themself (the service ignores it for anyone else)
      const [summary, jobs] = await Promise.all([
        jobsAPI<IUsageSummary>('usage', { user }),
        jobsAPI<IUsageJobs>('usage/jobs', { user, limit: this.settings.topJobs })
      ]);
      this.summary = summary;
      this.jobs = jobs.jobs;
      this.status = { kind: 'ready' };
    } catch (e) {
      this.status = statusOf(e);
      await Promise.all([budgets, series]);
      this._emit();
      throw e;
    }
    await Promise.all([budgets, series]);
    this._emit();
  }

  /** The chart's buckets: day, week or month. */
  setUnit(unit: UsageUnit): void {
    if (unit === this.unit) {
      return;
    }
    this.unit = unit;
    this._emit();
    if (this.status.kind !== 'idle') {
      void this.loadSeries(true); // else the first refresh asks with it
    }
  }

  setMetric(metric: UsageMetric): void {
    this.metric = metric;
    this._emit();
  }

  async loadSeries(showLoading = true): Promise<void> {
    const ask = ++this._seriesAsk;
    const unit = this.unit;
    if (showLoading || !this.series) {
      this.seriesStatus = { kind: 'loading' };
      this._emit();
    }
    try {
      const series = await jobsAPI<IUsageSeries>('usage/series', {
        unit,
        user: this.host.user(),
        ...seriesPeriod(unit, this.host.now?.() ?? new Date())
      });
      if (ask !== this._seriesAsk) {
        return; // the unit changed meanwhile
      }
      this.series = series;
      this.seriesStatus = { kind: 'ready' };
    } catch (e) {
      if (ask !== this._seriesAsk) {
        return;
      }
      this.seriesStatus = statusOf(e);
    }
    this._emit();
  }

  /** The Jobs panel, at this job. */
  openJob(job: IUsageJob): void {
    this.host.openJob(job);
  }

  dispose(): void {
    this._poll?.dispose();
    this._poll = null;
    Signal.clearData(this);
  }

  private _siteNames(): Map<string, string> {
    const names = new Map<string, string>();
    for (const b of this.budgets) {
      names.set(b.site, b.site_name);
    }
    for (const j of this.jobs) {
      names.set(j.site, j.site_name);
    }
    for (const s of this.summary?.sites ?? []) {
      names.set(s.site, s.site_name);
    }
    return names;
  }

  private _frequency(): { interval: number; max: number; backoff: boolean } {
    const interval = Math.max(5, this.settings.pollSeconds) * 1000;
    return { interval, max: Math.max(interval, 300_000), backoff: true };
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _poll: Poll | null = null;
  private _visible = false;
  private _seriesAsk = 0;
  private _changed = new Signal<this, void>(this);
}

function statusOf(e: unknown): Status {
  const code = (e as { code?: string }).code;
  return { kind: 'error', message: errorMessage(e), code };
}
