import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { errorMessage, jobsAPI, streamLog } from '../request';
import { IJob, IJobPage, ISiteContext, ISiteStatus, JobKind, TRANSLATION_DOMAIN } from '../tokens';

/** Something that loads: idle (nothing asked yet), loading, ready or failed with a sentence. */
export type Status =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'ready' }
  | { kind: 'error'; message: string; code?: string };

/** The states a job ends in; every other state is active (it holds resources at a site). */
export const FINAL_STATES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'lost'
]);
/** The service's states, in their order of life. */
export const STATES = [
  'pending',
  'submitted',
  'queued',
  'preparing',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'lost'
] as const;

export function isActive(job: IJob): boolean {
  return !FINAL_STATES.has(job.state);
}

/** What the panel shows: the filters of the list and a search in the rows. */
export interface IJobFilters {
  /** a site slug; '' for every site */
  site: string;
  /** one state, 'active', 'ended', or '' for all */
  state: string;
  kind: '' | JobKind;
  /** words looked for in a job's name, pod, notebook, site, batch job id and sentence */
  search: string;
}

/** The Jobs settings (labextension/schema/jobs.json), read live by the panel. */
export interface IJobsSettings {
  /** how often the list is asked for again while the panel is shown, in seconds */
  pollSeconds: number;
  /** how often while the panel is closed (to notice ended jobs and keep the status bar) */
  pollHiddenSeconds: number;
  /** the longest wait between two asks while the service fails (the backoff's cap) */
  pollMaxSeconds: number;
  /** jobs of the history per page */
  pageSize: number;
  /** the last lines a log view starts with */
  logTailLines: number;
  /** a notification when one of my jobs ends or fails */
  notifyOnEnd: boolean;
}

export const DEFAULT_SETTINGS: IJobsSettings = {
  pollSeconds: 5,
  pollHiddenSeconds: 30,
  pollMaxSeconds: 60,
  pageSize: 50,
  logTailLines: 1000,
  notifyOnEnd: true
};

/** A log shown in the panel: the job, its text so far and whether it still follows. */
export interface ILogView {
  job: IJob;
  text: string;
  following: boolean;
  status: Status;
}

/** What the model needs from JupyterLab, so it stays testable without a shell. */
export interface IJobsHost {
  /** this session's user and server name (JupyterHub's page config), null outside a hub */
  session(): { user: string | null; serverName: string };
  /** where this session runs (GET intertwin/site), null when not started by the interTwin hub */
  site(): Promise<ISiteContext | null>;
  /** ask before something that cannot be undone; true when the user agrees */
  confirm(title: string, body: string, accept: string, reject: string): Promise<boolean>;
  /** a JupyterLab notification with one action */
  notify(
    message: string,
    type: 'success' | 'error' | 'warning' | 'info',
    action: { label: string; callback: () => void } | null
  ): void;
  /** open a notebook and scroll to one of its cells */
  openCell(path: string, cellId: string | null): Promise<void>;
  /** bring the Jobs panel forward */
  showPanel(): void;
}

/** The most text a log view keeps (the oldest lines go first). */
export const LOG_MAX_CHARS = 2_000_000;

/** A job's name for people: the server's name, or the cell and its notebook. */
export function jobTitle(job: IJob, trans: TranslationBundle): string {
  if (job.kind === 'batch-cell') {
    const nb = job.notebook_path ? job.notebook_path.split('/').pop() : null;
    if (nb && job.cell_id) {
      return trans.__('cell %1 of %2', job.cell_id, nb);
    }
    return nb ?? job.pod;
  }
  return job.server_name ? trans.__('server "%1"', job.server_name) : trans.__('default server');
}

/** "2 h 05 min", "3 min 20 s", "12 s": from `started` (or `submitted`) to `finished` or now. */
export function duration(job: IJob, now: number = Date.now()): string | null {
  const from = Date.parse(job.started ?? job.submitted);
  if (Number.isNaN(from)) {
    return null;
  }
  const to = job.finished ? Date.parse(job.finished) : now;
  const s = Math.max(0, Math.round((to - from) / 1000));
  if (s < 60) {
    return `${s} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  }
  const h = Math.floor(m / 60);
  if (h < 48) {
    return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  }
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "4 CPU · 16 GiB · 2 GPUs" */
export function resourcesText(job: IJob, trans: TranslationBundle): string {
  const parts: string[] = [];
  const { cpu, memory, gpus } = job.resources;
  if (cpu !== null && cpu !== undefined) {
    parts.push(trans.__('%1 CPU', Number.isInteger(cpu) ? cpu : cpu.toFixed(1)));
  }
  if (memory !== null && memory !== undefined) {
    const gib = memory / 2 ** 30;
    parts.push(
      gib >= 1
        ? `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`
        : `${Math.round(memory / 2 ** 20)} MiB`
    );
  }
  if (gpus > 0) {
    parts.push(trans._n('%1 GPU', '%1 GPUs', gpus));
  }
  return parts.join(' · ');
}

/**
 * Where this session runs, for the status bar: "Vega · 2 × A100 · batch job 1003" (the parts
 * known; the site context alone before the service has answered).
 */
export function sessionText(
  job: IJob | null,
  site: ISiteContext | null,
  trans: TranslationBundle
): string | null {
  const name = job?.site_name ?? site?.name ?? site?.title ?? null;
  if (!name) {
    return null;
  }
  const parts = [name];
  const gpus = job?.resources.gpus ?? 0;
  if (gpus > 0) {
    parts.push(
      site?.gpu_model ? `${gpus} × ${site.gpu_model}` : trans._n('%1 GPU', '%1 GPUs', gpus)
    );
  }
  if (job?.batch_job) {
    parts.push(trans.__('batch job %1', job.batch_job));
  }
  return parts.join(' · ');
}

/** Does the job match the words of the search (every word somewhere in its text, its kind included)? */
export function matches(job: IJob, search: string, trans: TranslationBundle): boolean {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return true;
  }
  const text = [
    jobTitle(job, trans),
    job.kind,
    job.pod,
    job.server_name,
    job.notebook_path ?? '',
    job.cell_id ?? '',
    job.site,
    job.site_name,
    job.batch_job ?? '',
    job.sentence,
    job.state,
    job.node ?? '',
    job.id
  ]
    .join(' ')
    .toLowerCase();
  return words.every(w => text.includes(w));
}

/**
 * The Jobs panel's state: my running jobs (asked for again every few seconds with
 * `@lumino/polling`, backing off while the service fails, on standby while the panel or the
 * browser tab is hidden), the history a page at a time, the open log, cancel, and a
 * notification when one of my jobs ends.
 */
export class JobsModel {
  constructor(
    readonly host: IJobsHost,
    settings: Partial<IJobsSettings> = {},
    translator: ITranslator = nullTranslator
  ) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.trans = translator.load(TRANSLATION_DOMAIN);
  }

  readonly trans: TranslationBundle;
  settings: IJobsSettings;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  filters: IJobFilters = { site: '', state: '', kind: '', search: '' };
  /** every active job of mine (the service's `state=active`), newest first */
  active: IJob[] = [];
  /** ended jobs, newest first, as far as paged */
  history: IJob[] = [];
  /** the cursor of the next history page; null when there is none */
  historyNext: string | null = null;
  historyStatus: Status = { kind: 'idle' };
  /** the running jobs' list: loading at first, then ready, or the service's failure */
  status: Status = { kind: 'idle' };
  /** the catalogue's sites as the service knows them (for the site filter) */
  sites: ISiteStatus[] = [];
  /** where this session runs (for the status bar) */
  site: ISiteContext | null = null;
  /** the job of this very session, once the service lists it */
  sessionJob: IJob | null = null;
  log: ILogView | null = null;
  /** the last cancel's failure, shown on the panel */
  actionStatus: Status = { kind: 'idle' };

  /** New settings (from the setting registry): the poll and the pages use them from now. */
  setSettings(settings: Partial<IJobsSettings>): void {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    if (this._poll) {
      this._poll.frequency = this._frequency();
    }
    this._emit();
  }

  /**
   * The active jobs the filters and the search let through (running first). One the history
   * already holds is left out: it ended after the last poll and before the history was asked
   * for (the history is reloaded when a poll sees another job end), and the history's copy,
   * the newer one, is what it is now; the next poll drops it from `active`.
   */
  get shownActive(): IJob[] {
    const { site, state, kind, search } = this.filters;
    if (state === 'ended' || FINAL_STATES.has(state)) {
      return [];
    }
    const ended = new Set(this.history.map(j => j.id));
    return this.active.filter(
      j =>
        !ended.has(j.id) &&
        (!site || j.site === site) &&
        (!kind || j.kind === kind) &&
        (!state || state === 'active' || j.state === state) &&
        matches(j, search, this.trans)
    );
  }

  /** The history the search lets through (the other filters are the service's). */
  get shownHistory(): IJob[] {
    if (this._historyHidden()) {
      return [];
    }
    return this.history.filter(j => matches(j, this.filters.search, this.trans));
  }

  /**
   * Start: load at once, then poll. The panel calls it when first shown; the status bar's
   * item calls it at start-up so it can say where this session runs.
   */
  start(): void {
    if (this._poll) {
      return;
    }
    this.status = { kind: 'loading' };
    this._emit();
    void this.host
      .site()
      .then(site => {
        this.site = site;
        this._emit();
      })
      .catch(() => undefined);
    void this.loadSites();
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: this._frequency(),
      // a hidden browser tab asks nothing; a closed panel asks less often
      standby: 'when-hidden',
      name: 'intertwin:jobs'
    });
    void this._poll.start();
    if (this._visible) {
      void this.loadHistory(true);
    }
  }

  /** Whether the panel is on screen: shown again, the list is asked for at once. */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (this._poll) {
      this._poll.frequency = this._frequency();
    }
    if (visible && this._poll) {
      void this._poll.refresh();
      void this.loadHistory(true);
    }
  }

  /**
   * Ask for my active jobs (every one: the filters apply in the panel, and an ended job must
   * be noticed whatever is shown) and notify about the ones that ended since the last ask.
   * Rejects when the service fails, so the poll backs off.
   */
  async refresh(): Promise<void> {
    let page: IJobPage;
    try {
      // `user`: an admin's list would hold everyone's jobs (the service ignores it for others)
      page = await jobsAPI<IJobPage>('jobs', {
        state: 'active',
        limit: 1000,
        user: this.host.session().user
      });
    } catch (e) {
      this.status = statusOf(e);
      this._emit();
      throw e;
    }
    const before = this._known;
    const me = this.host.session();
    const now = new Map(page.jobs.map(j => [j.id, j]));
    this.active = page.jobs;
    this.status = { kind: 'ready' };
    this.sessionJob =
      page.jobs.find(
        j => j.kind === 'notebook' && j.user === me.user && j.server_name === me.serverName
      ) ?? this.sessionJob;
    if (this.log && now.has(this.log.job.id)) {
      this.log = { ...this.log, job: now.get(this.log.job.id)! };
    }
    const ended = before === null ? [] : [...before.values()].filter(j => !now.has(j.id));
    this._known = now;
    this._emit();
    if (ended.length > 0) {
      await Promise.all(ended.map(j => this._ended(j)));
      if (this._visible) {
        await this.loadHistory(true, false);
      }
    }
  }

  /** Change the filters: the history is asked for again with them. */
  setFilters(patch: Partial<IJobFilters>): void {
    const before = this.filters;
    this.filters = { ...this.filters, ...patch };
    const server =
      before.site !== this.filters.site ||
      before.kind !== this.filters.kind ||
      before.state !== this.filters.state;
    if (server) {
      void this.loadHistory(true);
    }
    this._emit();
  }

  /** The first history page again (`reset`), or the next one. */
  async loadHistory(reset = false, showLoading = true): Promise<void> {
    if (this._historyHidden()) {
      this.history = [];
      this.historyNext = null;
      this.historyStatus = { kind: 'ready' };
      this._emit();
      return;
    }
    if (!reset && !this.historyNext) {
      return;
    }
    const ask = ++this._historyAsk;
    if (showLoading) {
      this.historyStatus = { kind: 'loading' };
      this._emit();
    }
    const { site, kind, state } = this.filters;
    try {
      const page = await jobsAPI<IJobPage>('jobs', {
        user: this.host.session().user,
        site,
        kind,
        state: FINAL_STATES.has(state) ? state : [...FINAL_STATES].join(','),
        limit: this.settings.pageSize,
        cursor: reset ? null : this.historyNext
      });
      if (ask !== this._historyAsk) {
        return; // the filters changed meanwhile
      }
      this.history = reset ? page.jobs : [...this.history, ...page.jobs];
      this.historyNext = page.next;
      this.historyStatus = { kind: 'ready' };
    } catch (e) {
      if (ask !== this._historyAsk) {
        return;
      }
      this.historyStatus = statusOf(e);
    }
    this._emit();
  }

  async loadSites(): Promise<void> {
    try {
      this.sites = (await jobsAPI<{ sites: ISiteStatus[] }>('sites')).sites;
      this._emit();
    } catch {
      // the site filter then offers the sites of the listed jobs
    }
  }

  /** The sites the filter offers: the service's, else those of the jobs listed. */
  get siteChoices(): { slug: string; name: string }[] {
    if (this.sites.length > 0) {
      return this.sites.map(s => ({ slug: s.site, name: s.name }));
    }
    const seen = new Map<string, string>();
    for (const j of [...this.active, ...this.history]) {
      seen.set(j.site, j.site_name);
    }
    return [...seen].map(([slug, name]) => ({ slug, name }));
  }

  /**
   * Cancel a job after the user confirms, in a dialog naming the job and its site. True when
   * the service accepted it.
   */
  async cancel(job: IJob): Promise<boolean> {
    const t = this.trans;
    const what = jobTitle(job, t);
    const ok = await this.host.confirm(
      t.__('Cancel %1 at %2?', what, job.site_name),
      job.kind === 'notebook'
        ? t.__(
            'The notebook server %1 at %2 (%3) stops, with its kernels; unsaved work in it is lost.',
            what,
            job.site_name,
            job.sentence
          )
        : t.__(
            'The batch job of %1 at %2 (%3) is cancelled; its results are lost.',
            what,
            job.site_name,
            job.sentence
          ),
      t.__('Cancel job'),
      t.__('Keep it')
    );
    if (!ok) {
      return false;
    }
    this.actionStatus = { kind: 'loading' };
    this._emit();
    try {
      const answer = await jobsAPI<IJob>(
        `jobs/${encodeURIComponent(job.id)}`,
        {},
        { method: 'DELETE' }
      );
      this.actionStatus = { kind: 'ready' };
      this.active = this.active.map(j => (j.id === answer.id ? answer : j));
      this._emit();
      void this._poll?.refresh();
      return true;
    } catch (e) {
      this.actionStatus = statusOf(e);
      this._emit();
      return false;
    }
  }

  /**
   * Show a job's log: a running job's is followed (the text grows as the job prints), an ended
   * job's last lines are shown.
   */
  openLog(job: IJob): void {
    this.closeLog();
    const follow = isActive(job);
    const view: ILogView = { job, text: '', following: follow, status: { kind: 'loading' } };
    this.log = view;
    const abort = new AbortController();
    this._logAbort = abort;
    this._emit();
    const current = (): boolean => this.log !== null && this._logAbort === abort;
    streamLog(
      job.id,
      { tail: this.settings.logTailLines, follow },
      text => {
        if (!current()) {
          return;
        }
        const all = this.log!.text + text;
        this.log = {
          ...this.log!,
          text: all.length > LOG_MAX_CHARS ? all.slice(all.length - LOG_MAX_CHARS) : all,
          status: { kind: 'ready' }
        };
        this._emit();
      },
      abort.signal
    )
      .then(() => {
        if (current()) {
          this.log = { ...this.log!, following: false, status: { kind: 'ready' } };
          this._emit();
        }
      })
      .catch(e => {
        if (current()) {
          this.log = { ...this.log!, following: false, status: statusOf(e) };
          this._emit();
        }
      });
  }

  closeLog(): void {
    this._logAbort?.abort();
    this._logAbort = null;
    if (this.log) {
      this.log = null;
      this._emit();
    }
  }

  /** "Open the notebook at that cell" for a batch cell. */
  async openCell(job: IJob): Promise<void> {
    if (job.notebook_path) {
      await this.host.openCell(job.notebook_path, job.cell_id ?? null);
    }
  }

  dispose(): void {
    this.closeLog();
    this._poll?.dispose();
    this._poll = null;
    Signal.clearData(this);
  }

  /** A job of mine that was active at the last ask is not any more: ask how it ended. */
  private async _ended(job: IJob): Promise<void> {
    let final = job;
    try {
      final = await jobsAPI<IJob>(`jobs/${encodeURIComponent(job.id)}`);
    } catch {
      // gone from the service too: say what is known
    }
    if (this.log?.job.id === final.id) {
      this.log = { ...this.log, job: final };
      this._emit();
    }
    const me = this.host.session().user;
    if (!this.settings.notifyOnEnd || (me && final.user !== me)) {
      return; // an admin lists everyone's jobs; only mine are notified
    }
    const t = this.trans;
    const what = jobTitle(final, t);
    const action = { label: t.__('Show logs'), callback: () => this._showLogs(final) };
    if (final.state === 'failed' || final.state === 'lost') {
      const why = [
        final.exit_code !== null && final.exit_code !== undefined
          ? t.__('exit code %1', final.exit_code)
          : '',
        final.reason ?? ''
      ]
        .filter(Boolean)
        .join(', ');
      this.host.notify(
        why
          ? t.__('Your %1 at %2 failed: %3 (%4).', what, final.site_name, final.sentence, why)
          : t.__('Your %1 at %2 failed: %3.', what, final.site_name, final.sentence),
        'error',
        action
      );
    } else {
      this.host.notify(
        t.__('Your %1 at %2 ended: %3.', what, final.site_name, final.sentence),
        final.state === 'succeeded' ? 'success' : 'info',
        action
      );
    }
  }

  private _showLogs(job: IJob): void {
    this.host.showPanel();
    this.openLog(job);
  }

  private _historyHidden(): boolean {
    const { state } = this.filters;
    return state !== '' && state !== 'ended' && !FINAL_STATES.has(state);
  }

  private _frequency(): { interval: number; max: number; backoff: boolean } {
    const seconds = this._visible ? this.settings.pollSeconds : this.settings.pollHiddenSeconds;
    const interval = Math.max(1, seconds) * 1000;
    return {
      interval,
      max: Math.max(interval, this.settings.pollMaxSeconds * 1000),
      backoff: true
    };
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _poll: Poll | null = null;
  private _visible = false;
  /** the active jobs at the last ask; null before the first */
  private _known: Map<string, IJob> | null = null;
  private _historyAsk = 0;
  private _logAbort: AbortController | null = null;
  private _changed = new Signal<this, void>(this);
}

function statusOf(e: unknown): Status {
  const code = (e as { code?: string }).code;
  return { kind: 'error', message: errorMessage(e), code };
}
