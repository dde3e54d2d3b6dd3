import { ISignal, Signal } from '@lumino/signaling';

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

/** Pages kept in memory by default: 25 pages of 200 rows, many screens around the viewport. */
export const MAX_PAGES = 25;

/**
 * The rows behind a virtualised list: fetched page by page as the list scrolls, so a
 * collection of 100,000 files costs only the pages the user has looked at. Offset sources
 * can jump anywhere (the scrollbar covers the whole total at once); cursor sources grow at
 * the end, with one "loading more" row while there is a next page. At most `maxPages` pages
 * are held: those furthest from the rows last asked for are dropped, and fetched again (by
 * offset, or by the cursor that led to them) if the list scrolls back to them.
 */
export class RowSource<T> {
  constructor(
    private readonly fetcher:
      { kind: 'offset'; fetch: OffsetFetcher<T> } | { kind: 'cursor'; fetch: CursorFetcher<T> },
    readonly pageSize = 200,
    readonly maxPages = MAX_PAGES
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Rows to draw (known total, or rows found so far + one placeholder while there are more). */
  get count(): number {
    if (this.total !== null) {
      return this.total;
    }
    return this._loaded + (this._more() ? 1 : 0);
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

  /** Rows held in memory now. */
  get held(): number {
    let n = 0;
    this._pages.forEach(p => (n += p.length));
    return n;
  }

  get(index: number): T | undefined {
    return this._pages.get(Math.floor(index / this.pageSize))?.[index % this.pageSize];
  }

  /** Make sure the rows [start, stop] are (being) fetched. */
  ensure(start: number, stop: number): void {
    this._lastRange = [Math.max(0, start), Math.max(0, stop)];
    const first = Math.floor(Math.max(0, start) / this.pageSize);
    const last = Math.floor(Math.max(0, stop) / this.pageSize);
    for (let p = first; p <= last; p++) {
      void this._fetchPage(p);
    }
    if (this.fetcher.kind === 'cursor' && stop >= this._loaded - 20 && this._more()) {
      void this._fetchPage(this._cursors.size - 1); // the page after the last one found
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

  /** Whether a cursor source has a page not fetched yet at its end. */
  private _more(): boolean {
    return this.fetcher.kind === 'cursor' && this._endPage === null;
  }

  private async _fetchPage(page: number): Promise<void> {
    if (this._pages.has(page) || this._inFlight.has(page) || this._disposed) {
      return;
    }
    let cursor: string | null = null;
    if (this.fetcher.kind === 'cursor') {
      // a cursor page can be fetched once the page before it said where it starts
      if (
        this.error ||
        (this._endPage !== null && page > this._endPage) ||
        !this._cursors.has(page)
      ) {
        return;
      }
      cursor = this._cursors.get(page) ?? null;
    }
    this._inFlight.add(page);
    try {
      let items: T[];
      if (this.fetcher.kind === 'offset') {
        const res = await this.fetcher.fetch(page * this.pageSize, this.pageSize);
        items = res.items;
        if (!this._disposed) {
          this.total = res.total;
          const { items: _i, ...rest } = res as unknown as Record<string, unknown>;
          void _i;
          this.extra = rest;
        }
      } else {
        const res = await this.fetcher.fetch(cursor, this.pageSize);
        items = res.items;
        if (!this._disposed) {
          if (res.next && items.length > 0) {
            this._cursors.set(page + 1, res.next);
          } else {
            this._endPage = page;
          }
          this._loaded = Math.max(this._loaded, page * this.pageSize + items.length);
          if (this._endPage !== null) {
            this.total = this._endPage * this.pageSize + items.length;
          }
        }
      }
      if (this._disposed) {
        return;
      }
      this._pages.set(page, items);
      this._evict();
      this._firstDone = true;
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      this._firstDone = true;
    } finally {
      this._inFlight.delete(page);
    }
    this._changed.emit();
  }

  /** Drop the pages furthest from the rows last asked for, down to `maxPages`. */
  private _evict(): void {
    if (this._pages.size <= this.maxPages) {
      return;
    }
    const [start, stop] = this._lastRange;
    const first = Math.floor(start / this.pageSize);
    const last = Math.floor(stop / this.pageSize);
    const distance = (p: number): number => (p < first ? first - p : p > last ? p - last : 0);
    const far = [...this._pages.keys()].sort((a, b) => distance(b) - distance(a));
    for (const p of far.slice(0, this._pages.size - this.maxPages)) {
      if (distance(p) > 0) {
        this._pages.delete(p);
      }
    }
  }

  private _pages = new Map<number, T[]>();
  /** cursor sources: the cursor of each page found so far (page 0: null) */
  private _cursors = new Map<number, string | null>([[0, null]]);
  /** cursor sources: the last page, once a page said there is no next one */
  private _endPage: number | null = null;
  private _inFlight = new Set<number>();
  private _loaded = 0;
  private _firstDone = false;
  private _disposed = false;
  private _lastRange: [number, number] = [0, 0];
  private _changed = new Signal<this, void>(this);
}
