import { Clipboard, InputDialog, Notification } from '@jupyterlab/apputils';
import {
  addIcon,
  Button,
  closeIcon,
  copyIcon,
  folderIcon,
  HTMLSelect,
  refreshIcon
} from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { errorMessage } from '../../request';
import { DataLakeModel } from '../model';
import { IContentItem, IDidDetails } from '../../tokens';
import { Badge, Empty, ErrorBanner, formatBytes, formatCount, lifetimeChoices, siteLabel, StatusLine } from './common';
import { VirtualList } from './VirtualList';

/** Copy a path to the clipboard (async API first; JupyterLab's helper as the fallback). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}

/** Rucio's own bookkeeping fields, not the scientists' metadata. */
const SYSTEM_META = new Set([
  'account', 'bytes', 'length', 'events', 'is_open', 'closed_at', 'created_at', 'updated_at',
  'deleted_at', 'expired_at', 'eol_at', 'accessed_at', 'access_cnt', 'did_type', 'scope', 'name',
  'monotonic', 'obsolete', 'hidden', 'suppressed', 'purge_replicas', 'availability', 'complete',
  'is_archive', 'constituent', 'is_new', 'guid', 'md5', 'adler32'
]);

function userMetadata(meta: Record<string, unknown> | undefined): [string, unknown][] {
  return Object.entries(meta ?? {}).filter(
    ([k, v]) => !SYSTEM_META.has(k) && v !== null && v !== undefined && v !== ''
  );
}

function dirname(path: string): string {
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Copy and open-folder buttons of one local path. */
export function PathActions(props: {
  model: DataLakeModel;
  path: string;
  onCopied: (path: string) => void;
}): JSX.Element {
  const { model, path } = props;
  const folder = dirname(path);
  const where = model.browsable(folder);
  return (
    <span className="itw-dl-path-actions">
      <Button
        small
        minimal
        title={`Copy ${path}`}
        data-testid="itw-dl-copy-path"
        onClick={() => {
          void copyText(path).then(() => props.onCopied(path));
        }}
      >
        <copyIcon.react tag="span" />
      </Button>
      <Button
        small
        minimal
        title={where.relative !== null ? `Show ${folder} in the file browser` : where.reason ?? ''}
        data-testid="itw-dl-open-folder"
        onClick={() => {
          if (where.relative !== null) {
            void model.host.openFolder(where.relative);
          } else {
            Notification.warning(where.reason ?? 'The file browser cannot show this folder.', {
              autoClose: 8000,
              actions: [
                {
                  label: 'Copy path',
                  callback: () => {
                    void copyText(path).then(() => props.onCopied(path));
                  }
                }
              ]
            });
          }
        }}
      >
        <folderIcon.react tag="span" />
      </Button>
    </span>
  );
}

function ContentRow(props: {
  item: IContentItem;
  model: DataLakeModel;
  withPaths: boolean;
  onCopied: (p: string) => void;
}): JSX.Element {
  const { item, model, withPaths } = props;
  if (withPaths && item.path) {
    // the local path, cut at its start when too long (the file name stays visible)
    return (
      <>
        <span className="itw-dl-row-path" title={item.path} data-testid="itw-dl-path" dir="rtl">
          <bdi dir="ltr">{item.path}</bdi>
        </span>
        <PathActions model={model} path={item.path} onCopied={props.onCopied} />
      </>
    );
  }
  return (
    <>
      <span className="itw-dl-row-name" title={`${item.scope}:${item.name}`}>
        {item.name}
      </span>
      {withPaths ? (
        <Badge state={item.state ?? 'NOT_AVAILABLE'} />
      ) : (
        <span className="itw-dl-row-size">{formatBytes(item.bytes)}</span>
      )}
    </>
  );
}

function Replicas(props: { details: IDidDetails }): JSX.Element {
  const { replicas, here } = props.details;
  if (replicas.length === 0) {
    return <Empty testid="itw-dl-no-replicas">No replica anywhere yet.</Empty>;
  }
  return (
    <div className="itw-dl-badges" data-testid="itw-dl-replicas">
      {replicas.map(r => {
        // Rucio updates a collection's replica row lazily; at this site the user's rule and
        // the file replicas (`here`) are the fresher word
        const state =
          here && here.rse === r.rse && here.state === 'AVAILABLE' ? 'AVAILABLE' : r.state;
        return (
          <Badge
            key={r.rse}
            label={r.rse}
            state={state}
            title={`${r.rse}${r.site ? ` (${r.site})` : ''}: ${state.toLowerCase()}${
              r.length && state === r.state ? `, ${r.available_length ?? 0} of ${r.length} files` : ''
            }`}
          />
        );
      })}
    </div>
  );
}

/** The opened DID: replicas per RSE, make-available here, rule progress, content and paths. */
export function DidDetails(props: { model: DataLakeModel }): JSX.Element | null {
  const { model } = props;
  const { selected, details, config } = model;
  const [lifetime, setLifetime] = useState<number | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  if (!selected) {
    return null;
  }
  const did = `${selected.scope}:${selected.name}`;
  const onCopied = (p: string): void => {
    setCopied(p);
    Notification.success(`Copied ${p}`, { autoClose: 3000 });
  };
  const days = lifetime ?? config?.default_lifetime_days ?? 7;
  const here = details?.here?.state ?? 'NOT_AVAILABLE';
  const site = siteLabel(config?.site, config?.site_title);
  const canReplicate = !!config?.rse;
  const content = model.content;
  const total = content?.total;

  const addToNotebook = async (): Promise<void> => {
    const guess = selected.name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1');
    const res = await InputDialog.getText({
      title: `Attach ${did} to the notebook`,
      label: 'Python variable name',
      text: guess.slice(0, 40)
    });
    if (!res.button.accept || !res.value) {
      return;
    }
    const out = model.attachToNotebook(res.value);
    if (out.ok) {
      Notification.success(out.message, { autoClose: 5000 });
      if (out.injected) {
        Notification.promise(out.injected, {
          pending: { message: `Setting ${res.value} in the notebook's kernel…`, options: {} },
          success: { message: (msg: unknown) => String(msg), options: { autoClose: 8000 } },
          error: {
            message: (e: unknown) => `${res.value} is attached but not set in the kernel: ${errorMessage(e)}`,
            options: { autoClose: false }
          }
        });
      }
    } else {
      Notification.error(out.message, { autoClose: 8000 });
    }
  };

  return (
    <section className="itw-dl-details" data-testid="itw-dl-details" data-did={did}>
      <header className="itw-dl-details-head">
        <div className="itw-dl-details-title">
          <span className="itw-dl-type">{details?.type ?? ''}</span>
          <strong title={did} data-testid="itw-dl-details-name">
            {did}
          </strong>
        </div>
        <Button small minimal title="Reload" onClick={() => void model.reloadDetails(true)}>
          <refreshIcon.react tag="span" />
        </Button>
        <Button small minimal title="Close" data-testid="itw-dl-close" onClick={() => model.closeDid()}>
          <closeIcon.react tag="span" />
        </Button>
      </header>
      <StatusLine
        status={model.detailsStatus}
        loading="Asking Rucio about this DID…"
        onRetry={() => void model.reloadDetails(true)}
      />
      {details && (
        <>
          <div className="itw-dl-facts">
            {formatBytes(details.bytes)}
            {details.length !== null && details.length !== undefined
              ? ` · ${formatCount(details.length)} files`
              : ''}
            {userMetadata(details.metadata).length > 0 && (
              <span className="itw-dl-meta" data-testid="itw-dl-meta">
                {userMetadata(details.metadata)
                  .map(([k, v]) => `${k}=${String(v)}`)
                  .join(' · ')}
              </span>
            )}
          </div>
          <Replicas details={details} />
          <div className="itw-dl-here" data-testid="itw-dl-here" data-state={here}>
            <span>At {site}:</span>
            <Badge label={config?.rse ?? undefined} state={here} />
          </div>
          {canReplicate ? (
            here === 'NOT_AVAILABLE' || here === 'STUCK' ? (
              <div className="itw-dl-make">
                <Button
                  small
                  className="itw-dl-primary"
                  data-testid="itw-dl-make-available"
                  disabled={model.actionStatus.kind === 'loading'}
                  onClick={() => void model.makeAvailable(days)}
                >
                  Make available at {site}
                </Button>
                <label>
                  for{' '}
                  <HTMLSelect
                    aria-label="Lifetime"
                    data-testid="itw-dl-lifetime"
                    value={String(days)}
                    onChange={e => setLifetime(Number(e.currentTarget.value))}
                    options={lifetimeChoices(config?.default_lifetime_days ?? 7, config?.max_lifetime_days).map(d => ({
                      value: String(d),
                      label: `${d} day${d === 1 ? '' : 's'}`
                    }))}
                  />
                </label>
              </div>
            ) : here === 'REPLICATING' ? (
              <div className="itw-dl-progress" data-testid="itw-dl-progress">
                <span className="itw-dl-spinner" aria-hidden="true" />
                Copying to {config?.rse}
                {details.here?.rule
                  ? `: ${details.here.rule.locks.ok} of ${
                      details.here.rule.locks.ok +
                      details.here.rule.locks.replicating +
                      details.here.rule.locks.stuck
                    } files there`
                  : ''}{' '}
                — checking again now and then (at least every 30 s)…
              </div>
            ) : null
          ) : (
            <div className="itw-dl-muted" data-testid="itw-dl-no-rse">
              {config?.rse_reason ??
                `Data cannot be made available at ${site}: it has no scratch storage (RSE) in Rucio.`}
            </div>
          )}
          {model.actionStatus.kind === 'error' && (
            <ErrorBanner
              message={model.actionStatus.message}
              testid="itw-dl-action-error"
              onRetry={model.canRetryAction ? () => void model.retryAction() : undefined}
            />
          )}
          <div className="itw-dl-actions">
            <Button small minimal data-testid="itw-dl-add-notebook" onClick={() => void addToNotebook()}>
              <addIcon.react tag="span" elementPosition="left" />
              Add to notebook
            </Button>
          </div>
          {copied && (
            <div className="itw-dl-copied" data-testid="itw-dl-copied">
              Copied <code>{copied}</code>
            </div>
          )}
          <div className="itw-dl-content-head" data-testid="itw-dl-content-head">
            {model.contentHasPaths ? 'Local paths at ' + site : 'Files'}
            {total !== null && total !== undefined ? ` · ${formatCount(total)}` : ''}
          </div>
          {content?.error ? (
            <ErrorBanner message={content.error} onRetry={() => content.retry()} />
          ) : content && !content.ready ? (
            <StatusLine status={{ kind: 'loading' }} loading="Listing the files…" />
          ) : content && content.count === 0 ? (
            <Empty>This {details.type} is empty.</Empty>
          ) : content ? (
            <VirtualList
              source={content}
              testid="itw-dl-content"
              onVisible={(a, b) => model.setVisibleContent(a, b)}
              render={item => (
                <ContentRow item={item} model={model} withPaths={model.contentHasPaths} onCopied={onCopied} />
              )}
            />
          ) : null}
        </>
      )}
    </section>
  );
}
