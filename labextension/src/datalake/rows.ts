import { ISignal, Signal } from '@lumino/signaling';

import { errorMessage } from '../request';

/** Fetch one page by offset (the server knows the total). */
export type OffsetFetcher<T> = (
  offset: number,
  limit: number
) => Promise<{ items: T[]; total: number }>;

/** Fetch the page after `cursor` (null: the first); `next` is null after the last. */
export type CursorFetcher<T> = (
  cursor: string | null,
  limit: number
) => Promise<{ items: T[]; next: string | null }>;

/**
 * The rows behind a virtualised list: fetched page by page as the list scrolls, so a
 * collection of 100,000 files costs only the pages the user has looked at. Offset sources
 * can jump anywhere (the scrollbar covers the whole total at once); cursor sources grow at
 * the end, with one "loading more" row while there is a next page.
 */
export class RowSource<T> {
  constructor(
    private readonly fetcher:
      | { kind: 'offset'; fetch: OffsetFetcher<T> }
      | { kind: 'cursor'; fetch: CursorFetcher<T> },
    readonly pageSize = 200
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Rows to draw (known total, or loaded rows + one placeholder while there are more). */
  get count(): number {
    if (this.total !== null) {
      return this.total;
    }
    return this._loaded + (this._next !== null || !this._started ? 1 : 0);
  }

  /** The total when known (offset sources, or a cursor source read to its end). */
  total: number | null = null;
  /** Whether the first page has arrived. */
  get ready(): boolean {
    return this._firstDone;
  }
  /** The last failure, with the server's sentence. */
  error: string | null = null;
  /** Extra page fields (total_bytes, complete) from the first offset page. */
  extra: Record<string, unknown> = {};

  get(index: number): T | undefined {
    return this._rows.get(index);
  }

  /** Make sure the rows [start, stop] are (being) fetched. */
  ensure(start: number, stop: number): void {
    if (this.fetcher.kind === 'cursor') {
      if (stop >= this._loaded - 20 && (this._next !== null || !this._started)) {
        void this._fetchNext();
      }
      return;
    }
    const first = Math.floor(Math.max(0, start) / this.pageSize);
    const last = Math.floor(Math.max(0, stop) / this.pageSize);
    for (let p = first; p <= last; p++) {
      void this._fetchPage(p);
    }
  }

  /** Fetch again what was on screen (e.g. paths appearing while a rule replicates). */
  refresh(start = 0, stop = this.pageSize - 1): void {
    if (this.fetcher.kind === 'offset') {
      const first = Math.floor(start / this.pageSize);
      const last = Math.floor(stop / this.pageSize);
      for (let p = first; p <= last; p++) {
        this._pages.delete(p);
        void this._fetchPage(p);
      }
    }
  }

  /** Retry after an error. */
  retry(): void {
    this.error = null;
    this._changed.emit();
    this.ensure(this._lastRange[0], this._lastRange[1]);
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  private async _fetchPage(page: number): Promise<void> {
    if (this._pages.has(page) || this._disposed) {
      return;
    }
    if (this.fetcher.kind !== 'offset') {
      return;
    }
    this._pages.add(page);
    this._lastRange = [page * this.pageSize, page * this.pageSize + this.pageSize - 1];
    try {
      const res = await this.fetcher.fetch(page * this.pageSize, this.pageSize);
      if (this._disposed) {
        return;
      }
      res.items.forEach((item, i) => this._rows.set(page * this.pageSize + i, item));
      this.total = res.total;
      const { items: _i, ...rest } = res as unknown as Record<string, unknown>;
      void _i;
      this.extra = rest;
      this._firstDone = true;
      this.error = null;
    } catch (e) {
      this._pages.delete(page);
      this.error = errorMessage(e);
      this._firstDone = true;
    }
    this._changed.emit();
  }

  private async _fetchNext(): Promise<void> {
    if (this._inFlight || this._disposed || this.error) {
      return;
    }
    if (this.fetcher.kind !== 'cursor') {
      return;
    }
    this._inFlight = true;
    this._started = true;
    try {
      const res = await this.fetcher.fetch(this._next, this.pageSize);
      if (this._disposed) {
        return;
      }
      res.items.forEach((item, i) => this._rows.set(this._loaded + i, item));
      this._loaded += res.items.length;
      this._next = res.next && res.items.length > 0 ? res.next : null;
      if (this._next === null) {
        this.total = this._loaded;
      }
      this._firstDone = true;
      this.error = null;
    } catch (e) {
      this.error = errorMessage(e);
      this._firstDone = true;
    } finally {
      this._inFlight = false;
    }
    this._changed.emit();
  }

  private _rows = new Map<number, T>();
  private _pages = new Set<number>();
  private _loaded = 0;
  private _next: string | null = null;
  private _started = false;
  private _firstDone = false;
  private _inFlight = false;
  private _disposed = false;
  private _lastRange: [number, number] = [0, 0];
  private _changed = new Signal<this, void>(this);
}
