import { Kernel } from '@jupyterlab/services';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { datalakeAPI, didPath, errorMessage, signInAgain } from '../request';
import { pollDelay, POLL_FIRST_MS, POLL_MAX_MS } from './poll';
import {
  IContentItem,
  DataLakeAnswer,
  IDataLakeConfig,
  IDid,
  IDidDetails,
  IRule,
  IRulePermissions,
  IRucioAttachment,
  TRANSLATION_DOMAIN,
  TypeFilter
} from '../tokens';
import { injectAttachments } from './injection';
import { RowSource } from './rows';

/** Something that loads: idle (nothing asked yet), loading, ready or failed with a sentence. */
export type Status =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'ready' }
  | { kind: 'error'; message: string; code?: string };

export interface IFilterRow {
  key: string;
  op: string;
  value: string;
}

export interface ISearch {
  scope: string;
  name: string;
  type: TypeFilter;
  /** Rucio's filter text, built from filterRows */
  filters: string;
  /** the metadata filter builder's rows */
  filterRows: IFilterRow[];
}

/** Rucio's filter text from the builder's rows: `key<op>value` joined by `,` (AND). */
export function filterText(rows: IFilterRow[]): string {
  return rows
    .filter(r => r.key.trim() && r.value.trim())
    .map(r => `${r.key.trim()}${r.op}${r.value.trim()}`)
    .join(',');
}

/** What the panel needs from JupyterLab, so the model stays testable without a shell. */
export interface IDataLakeHost {
  /** the notebook the user last worked in, if any */
  activeNotebook(): INotebookHandle | null;
  /** show a folder (path relative to the server root) in the file browser */
  openFolder(relative: string): Promise<void>;
  /** the server's root directory, absolute, when known */
  serverRoot(): string | null;
}

export interface INotebookHandle {
  title: string;
  getAttachments(): IRucioAttachment[];
  setAttachments(value: IRucioAttachment[]): void;
  /** the notebook's kernel once it has started; null when the notebook has none */
  kernelReady(): Promise<Kernel.IKernelConnection | null>;
}

/** The DataLake settings (labextension/schema/datalake.json), read live by the panel. */
export interface IDataLakeSettings {
  /** the first poll delay while something replicates, in seconds */
  pollSeconds: number;
  /** the cap of the poll backoff, in seconds */
  pollMaxSeconds: number;
  /** rows per page of search results and content listings */
  pageSize: number;
  /** the lifetimes offered (days) */
  lifetimeChoices: number[];
  /** the lifetime selected at first; null: the site's default */
  defaultLifetimeDays: number | null;
}

/** The schema's defaults, used until the setting registry answers (or without one). */
export const DEFAULT_SETTINGS: IDataLakeSettings = {
  pollSeconds: POLL_FIRST_MS / 1000,
  pollMaxSeconds: POLL_MAX_MS / 1000,
  pageSize: 200,
  lifetimeChoices: [1, 7, 14, 30, 90],
  defaultLifetimeDays: null
};

/** States in which the session's site holds (or is getting) a replica: paths are worth asking. */
const HERE_STATES = new Set(['AVAILABLE', 'PARTIAL', 'REPLICATING', 'STUCK']);

/**
 * The DataLake panel's state: config, search, the opened DID with its content and local
 * paths, and the user's rules; polls while something replicates.
 */
export class DataLakeModel {
  constructor(
    readonly host: IDataLakeHost,
    settings: Partial<IDataLakeSettings> = {},
    translator: ITranslator = nullTranslator
  ) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.trans = translator.load(TRANSLATION_DOMAIN);
    signInAgain.connect(this._onSignInAgain, this);
  }

  /**
   * The server's sentence once any DataLake call said the user's hub sign-in has ended (401
   * `sign_in_again`); the panel then offers to sign in again. Null while all is well.
   */
  signInAgain: string | null = null;

  private _onSignInAgain(_: unknown, message: string): void {
    this.signInAgain =
      message || this.trans.__('Your sign-in has ended. Sign in to the hub again.');
    this._emit();
  }

  /** The user-facing sentences of the DataLake panel, in the user's language. */
  readonly trans: TranslationBundle;

  /** The settings now; `setSettings` changes them while the panel is open. */
  settings: IDataLakeSettings;

  /** New settings (from the setting registry): the next poll, page and lifetime use them. */
  setSettings(settings: Partial<IDataLakeSettings>): void {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this._emit();
  }

  /**
   * The lifetime selected at first (days): the user's setting, else the site's default, never
   * above the site's maximum.
   */
  get defaultLifetime(): number | null {
    if (!this.config) {
      return null; // the server's config has not arrived yet
    }
    const { default_lifetime_days: site, max_lifetime_days: max } = this.config;
    const days = this.settings.defaultLifetimeDays ?? site;
    return days > max ? site : days;
  }

  /** The lifetimes offered (days): the configured choices and the default, up to the maximum. */
  get lifetimeChoices(): number[] {
    const def = this.defaultLifetime;
    if (!this.config || def === null) {
      return [];
    }
    const max = this.config.max_lifetime_days;
    return Array.from(new Set([...this.settings.lifetimeChoices, def]))
      .filter(d => d > 0 && d <= max)
      .sort((a, b) => a - b);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  view: 'explore' | 'replicas' = 'explore';
  config: IDataLakeConfig | null = null;
  configStatus: Status = { kind: 'idle' };
  scopes: string[] = [];
  search: ISearch = { scope: '', name: '', type: 'all', filters: '', filterRows: [] };
  results: RowSource<IDid> | null = null;
  /** the DID opened from the results */
  selected: { scope: string; name: string } | null = null;
  details: IDidDetails | null = null;
  detailsStatus: Status = { kind: 'idle' };
  content: RowSource<IContentItem> | null = null;
  /** whether `content` lists local paths (a replica is here) or just the files */
  contentHasPaths = false;
  rules: IRule[] | null = null;
  /** what Rucio lets this account do with its rules (from GET rules) */
  rulePermissions: IRulePermissions = { extend: null, delete: null, reason: null };
  rulesStatus: Status = { kind: 'idle' };
  /** the last make-available / rule action */
  actionStatus: Status = { kind: 'idle' };
  /** what the Retry of a failed action does again: that same action */
  get canRetryAction(): boolean {
    return this._lastAction !== null;
  }

  /** Load config and scopes (the first thing the panel does; Retry does it again). */
  async start(): Promise<void> {
    this.signInAgain = null;
    this.configStatus = { kind: 'loading' };
    this._emit();
    try {
      const [config, scopes] = await Promise.all([
        datalakeAPI<DataLakeAnswer<'getConfig'>>('config'),
        datalakeAPI<DataLakeAnswer<'listScopes'>>('scopes')
      ]);
      this.config = config;
      this.scopes = [...scopes.scopes].sort();
      if (!this.search.scope && this.scopes.length > 0) {
        this.search = { ...this.search, scope: this.scopes[0] };
      }
      this.configStatus = { kind: 'ready' };
    } catch (e) {
      this.configStatus = statusOf(e);
    }
    this._emit();
  }

  setView(view: 'explore' | 'replicas'): void {
    this.view = view;
    if (view === 'replicas') {
      void this.loadRules();
    }
    this._emit();
  }

  setSearch(patch: Partial<ISearch>): void {
    this.search = { ...this.search, ...patch };
    if (patch.filterRows) {
      this.search.filters = filterText(patch.filterRows);
    }
    this._emit();
  }

  /** Run the search: a fresh cursor-paged result list. */
  runSearch(): void {
    this.results?.dispose();
    const { scope, name, type, filters } = this.search;
    const source = new RowSource<IDid>(
      {
        kind: 'cursor',
        fetch: (cursor, limit) =>
          datalakeAPI<DataLakeAnswer<'searchDids'>>('dids', {
            scope,
            name: name.trim() || '*',
            type,
            filters: filters.trim(),
            limit,
            cursor
          })
      },
      this.settings.pageSize
    );
    source.changed.connect(() => this._emit());
    this.results = source;
    this.closeDid();
    source.ensure(0, 0);
    this._emit();
  }

  /** Open a DID: details (replicas per RSE, state here), then its content or local paths. */
  async openDid(scope: string, name: string): Promise<void> {
    this.selected = { scope, name };
    this.details = null;
    this.actionStatus = { kind: 'idle' };
    this._lastAction = null;
    this._pollAttempt = 0;
    this._setContent(null, false);
    await this.reloadDetails(true);
  }

  closeDid(): void {
    this.selected = null;
    this.details = null;
    this.detailsStatus = { kind: 'idle' };
    this._setContent(null, false);
    this._stopPoll();
    this._emit();
  }

  async reloadDetails(showLoading = false): Promise<void> {
    const sel = this.selected;
    if (!sel) {
      return;
    }
    if (showLoading) {
      this.detailsStatus = { kind: 'loading' };
      this._emit();
    }
    try {
      const details = await datalakeAPI<DataLakeAnswer<'getDid'>>(didPath(sel.scope, sel.name));
      if (this.selected !== sel) {
        return;
      }
      const before = this.details?.here?.state;
      this.details = details;
      this.detailsStatus = { kind: 'ready' };
      const here = details.here?.state ?? 'NOT_AVAILABLE';
      const wantPaths = HERE_STATES.has(here);
      if (details.type === 'file' && !wantPaths) {
        this._setContent(null, false); // a file has no content to list
      } else if (!this.content || wantPaths !== this.contentHasPaths) {
        this._setContent(this._contentSource(sel, wantPaths), wantPaths);
      } else if (wantPaths && (before !== here || here === 'REPLICATING')) {
        this.content.refresh(this._visible[0], this._visible[1]);
      }
      if (before !== undefined && before !== here && here === 'AVAILABLE') {
        this._reinjectWaiting(`${sel.scope}:${sel.name}`);
      }
      if (here === 'REPLICATING' || Date.now() < this._watchUntil) {
        this._startPoll();
      } else if (this.view !== 'replicas') {
        this._stopPoll();
      }
    } catch (e) {
      if (this.selected !== sel) {
        return;
      }
      this.detailsStatus = statusOf(e);
      this._stopPoll();
    }
    this._emit();
  }

  /** The rows the content list shows now, so polling refreshes just those. */
  setVisibleContent(start: number, stop: number): void {
    this._visible = [start, stop];
  }

  /** "Make available at <site>": a replication rule to this site's scratch RSE. */
  async makeAvailable(lifetimeDays: number): Promise<void> {
    const sel = this.selected;
    if (!sel) {
      return;
    }
    this._lastAction = () => this.makeAvailable(lifetimeDays);
    this.actionStatus = { kind: 'loading' };
    this._emit();
    try {
      await datalakeAPI(
        'rules',
        {},
        {
          method: 'POST',
          body: JSON.stringify({ did: `${sel.scope}:${sel.name}`, lifetime_days: lifetimeDays })
        }
      );
      this.actionStatus = { kind: 'ready' };
      this._lastAction = null;
      // the rule may need a moment before Rucio reports it at the RSE: keep looking
      this._watchUntil = Date.now() + 20_000;
      this._pollAttempt = 0;
      await this.reloadDetails();
      this._startPoll();
    } catch (e) {
      this.actionStatus = statusOf(e);
      this._emit();
    }
  }

  /** Retry: the action that failed (make available, extend or delete), as it was asked. */
  async retryAction(): Promise<void> {
    const again = this._lastAction;
    if (again) {
      await again();
    }
  }

  /**
   * Whether the panel is on screen. A hidden (collapsed or closed) panel asks Rucio nothing;
   * shown again, it looks once at once and polls again if something still replicates.
   */
  setActive(active: boolean): void {
    if (active === this._active) {
      return;
    }
    this._active = active;
    if (!active) {
      this._stopPoll();
      return;
    }
    this._pollAttempt = 0;
    if (this.selected && this.details) {
      void this.reloadDetails();
    }
    if (this.view === 'replicas' && this.rules) {
      void this.loadRules(false);
    }
  }

  async loadRules(showLoading = true): Promise<void> {
    if (showLoading) {
      this.rulesStatus = { kind: 'loading' };
      this._emit();
    }
    try {
      const res = await datalakeAPI<DataLakeAnswer<'listRules'>>('rules');
      this.rules = res.rules;
      this.rulePermissions = res.permissions ?? this.rulePermissions;
      this.rulesStatus = { kind: 'ready' };
    } catch (e) {
      this.rulesStatus = statusOf(e);
    }
    if (this.rules?.some(r => r.state === 'REPLICATING') && this.view === 'replicas') {
      this._startPoll();
    }
    this._emit();
  }

  async extendRule(id: string, lifetimeDays: number): Promise<void> {
    this._lastAction = () => this.extendRule(id, lifetimeDays);
    await this._ruleAction(() =>
      datalakeAPI(
        `rules/${encodeURIComponent(id)}`,
        {},
        {
          method: 'PATCH',
          body: JSON.stringify({ lifetime_days: lifetimeDays })
        }
      )
    );
  }

  async deleteRule(id: string): Promise<void> {
    this._lastAction = () => this.deleteRule(id);
    await this._ruleAction(() =>
      datalakeAPI(`rules/${encodeURIComponent(id)}`, {}, { method: 'DELETE' })
    );
  }

  /** Attach the opened DID to the active notebook (rucio-jupyterlab's `rucio_attachments`). */
  attachToNotebook(variableName: string): {
    ok: boolean;
    message: string;
    /** setting the variable in the kernel, when one runs: a sentence for the user */
    injected?: Promise<string> | null;
  } {
    const sel = this.selected;
    const nb = this.host.activeNotebook();
    if (!sel || !this.details) {
      return { ok: false, message: this.trans.__('Open a DID first.') };
    }
    if (!nb) {
      return {
        ok: false,
        message: this.trans.__('Open a notebook first: the DID is attached to it.')
      };
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variableName)) {
      return {
        ok: false,
        message: this.trans.__('"%1" is not a Python variable name.', variableName)
      };
    }
    const did = `${sel.scope}:${sel.name}`;
    const type: IRucioAttachment['type'] = this.details.type === 'file' ? 'file' : 'collection';
    const others = nb
      .getAttachments()
      .filter(a => a.did !== did && a.variableName !== variableName);
    const attachment: IRucioAttachment = { did, variableName, type };
    nb.setAttachments([...others, attachment]);
    const injected = nb
      .kernelReady()
      .then(kernel =>
        kernel
          ? injectAttachments(kernel, [attachment])
          : this.trans.__('%1 has no kernel: %2 is set when one starts.', nb.title, variableName)
      );
    return {
      ok: true,
      message: this.trans.__('%1 is attached to %2 as %3.', did, nb.title, variableName),
      injected
    };
  }

  /** The DID opened here just became available: fill in the notebook variables waiting for it. */
  private _reinjectWaiting(did: string): void {
    const nb = this.host.activeNotebook();
    const waiting = nb?.getAttachments().filter(a => a.did === did) ?? [];
    if (nb && waiting.length > 0) {
      nb.kernelReady()
        .then(kernel => (kernel ? injectAttachments(kernel, waiting) : ''))
        .catch(e =>
          console.warn(`DataLake: could not set ${did} in the kernel: ${errorMessage(e)}`)
        );
    }
  }

  /**
   * Where a local path is in the file browser: relative to the server root, or null with the
   * reason (the scratch mount is on the compute node, maybe outside the notebook root).
   */
  browsable(path: string): { relative: string | null; reason: string | null } {
    const root = this.host.serverRoot();
    if (!root || root.startsWith('~')) {
      return {
        relative: null,
        reason: this.trans.__('The notebook server did not say where its root is.')
      };
    }
    const r = root.endsWith('/') ? root : `${root}/`;
    if (path === root || path.startsWith(r)) {
      return { relative: path.slice(r.length), reason: null };
    }
    return {
      relative: null,
      reason: this.trans.__(
        "%1 is outside this JupyterLab's root folder (%2), so the file browser cannot show it. Copy the path and open it from code instead.",
        path,
        root
      )
    };
  }

  dispose(): void {
    signInAgain.disconnect(this._onSignInAgain, this);
    this._stopPoll();
    this.results?.dispose();
    this.content?.dispose();
    Signal.clearData(this);
  }

  private async _ruleAction(call: () => Promise<unknown>): Promise<void> {
    this.actionStatus = { kind: 'loading' };
    this._emit();
    try {
      await call();
      this.actionStatus = { kind: 'ready' };
      this._lastAction = null;
      this._pollAttempt = 0;
    } catch (e) {
      this.actionStatus = statusOf(e);
    }
    await this.loadRules(false);
    if (this.selected) {
      await this.reloadDetails();
    }
  }

  private _contentSource(
    sel: { scope: string; name: string },
    paths: boolean
  ): RowSource<IContentItem> {
    const route = `${didPath(sel.scope, sel.name)}/${paths ? 'paths' : 'content'}`;
    return new RowSource<IContentItem>(
      {
        kind: 'offset',
        fetch: (offset, limit) =>
          datalakeAPI<DataLakeAnswer<'listContent' | 'listPaths'>>(route, { offset, limit })
      },
      this.settings.pageSize
    );
  }

  private _setContent(source: RowSource<IContentItem> | null, paths: boolean): void {
    this.content?.dispose();
    this.content = source;
    this.contentHasPaths = paths;
    if (source) {
      source.changed.connect(() => this._emit());
      source.ensure(0, 0);
    }
  }

  /** Poll while something replicates, less and less often (`pollDelay`), never while the
   * panel is hidden. */
  private _startPoll(): void {
    if (this._timer !== null || !this._active) {
      return;
    }
    const { pollSeconds, pollMaxSeconds } = this.settings;
    const delay = pollDelay(this._pollAttempt++, pollSeconds * 1000, pollMaxSeconds * 1000);
    this._timer = window.setTimeout(() => {
      this._timer = null;
      // a hidden browser tab asks Rucio nothing; the poll after it shows catches up
      if (document.hidden) {
        this._startPoll();
        return;
      }
      const jobs: Promise<void>[] = [];
      const watching = Date.now() < this._watchUntil;
      if (this.selected && (this.details?.here?.state === 'REPLICATING' || watching)) {
        jobs.push(this.reloadDetails());
      }
      if (this.view === 'replicas') {
        jobs.push(this.loadRules(false));
      }
      void Promise.all(jobs).finally(() => {
        const busy =
          Date.now() < this._watchUntil ||
          this.details?.here?.state === 'REPLICATING' ||
          (this.view === 'replicas' && this.rules?.some(r => r.state === 'REPLICATING'));
        if (busy) {
          this._startPoll();
        } else {
          this._stopPoll();
        }
      });
    }, delay);
  }

  private _stopPoll(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _timer: number | null = null;
  private _pollAttempt = 0;
  private _active = true;
  private _lastAction: (() => Promise<void>) | null = null;
  private _watchUntil = 0;
  private _visible: [number, number] = [0, 199];
  private _changed = new Signal<this, void>(this);
}

function statusOf(e: unknown): Status {
  const code = (e as { code?: string }).code;
  return { kind: 'error', message: errorMessage(e), code };
}
