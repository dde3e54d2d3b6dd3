import { Clipboard, InputDialog, Notification } from '@jupyterlab/apputils';
import {
  addIcon,
  Button,
  closeIcon,
  copyIcon,
  folderIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { errorMessage } from '../../request';
import { DataLakeModel } from '../model';
import { IContentItem, IDidDetails } from '../../tokens';
import {
  Badge,
  Empty,
  ErrorBanner,
  formatBytes,
  formatCount,
  siteLabel,
  StatusLine
} from './common';
import { LifetimeSelect } from './LifetimeSelect';
import { VirtualList } from './VirtualList';

/** Copy a path to the clipboard (async API first; JupyterLab's helper as the fallback). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
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
  const trans = model.trans;
  const folder = dirname(path);
  const where = model.browsable(folder);
  return (
    <span className="itw-dl-path-actions">
      <Button
        small
        minimal
        title={trans.__('Copy %1', path)}
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
        title={
          where.relative !== null
            ? trans.__('Show %1 in the file browser', folder)
            : (where.reason ?? '')
        }
        data-testid="itw-dl-open-folder"
        onClick={() => {
          if (where.relative !== null) {
            void model.host.openFolder(where.relative);
          } else {
            Notification.warning(
              where.reason ?? trans.__('The file browser cannot show this folder.'),
              {
                autoClose: 8000,
                actions: [
                  {
                    label: trans.__('Copy path'),
                    callback: () => {
                      void copyText(path).then(() => props.onCopied(path));
                    }
                  }
                ]
              }
            );
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
  const path = 'path' in item ? item.path : null;
  if (withPaths && path) {
    // the local path, cut at its start when too long (the file name stays visible)
    return (
      <>
        <span className="itw-dl-row-path" title={path} data-testid="itw-dl-path" dir="rtl">
          <bdi dir="ltr">{path}</bdi>
        </span>
        <PathActions model={model} path={path} onCopied={props.onCopied} />
      </>
    );
  }
  return (
    <>
      <span className="itw-dl-row-name" title={`${item.scope}:${item.name}`}>
        {item.name}
      </span>
      {withPaths ? (
        <Badge state={'state' in item ? item.state : 'NOT_AVAILABLE'} />
      ) : (
        <span className="itw-dl-row-size">{formatBytes(item.bytes)}</span>
      )}
    </>
  );
}

function Replicas(props: { model: DataLakeModel; details: IDidDetails }): JSX.Element {
  const { replicas, here } = props.details;
  const trans = props.model.trans;
  if (replicas.length === 0) {
    return <Empty testid="itw-dl-no-replicas">{trans.__('No replica anywhere yet.')}</Empty>;
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
              r.length && state === r.state
                ? trans.__(', %1 of %2 files', r.available_length ?? 0, r.length)
                : ''
            }`}
          />
        );
      })}
    </div>
  );
}

/** Size, file count and the scientists' metadata (the server leaves Rucio's own columns out). */
function DidFacts(props: { model: DataLakeModel; details: IDidDetails }): JSX.Element {
  const { details } = props;
  const meta = Object.entries(details.metadata ?? {});
  return (
    <div className="itw-dl-facts">
      {formatBytes(details.bytes)}
      {details.length !== null && details.length !== undefined
        ? ` · ${props.model.trans._n('%2 file', '%2 files', details.length, formatCount(details.length))}`
        : ''}
      {meta.length > 0 && (
        <span className="itw-dl-meta" data-testid="itw-dl-meta">
          {meta.map(([k, v]) => `${k}=${String(v)}`).join(' · ')}
        </span>
      )}
    </div>
  );
}

/** "Make available at <site>" with its lifetime, for data not (or stuck) here. */
function MakeAvailable(props: {
  model: DataLakeModel;
  site: string;
  days: number;
  onDays: (days: number) => void;
}): JSX.Element {
  const { model, site, days } = props;
  return (
    <div className="itw-dl-make">
      <Button
        small
        className="itw-dl-primary"
        data-testid="itw-dl-make-available"
        disabled={model.actionStatus.kind === 'loading'}
        onClick={() => void model.makeAvailable(days)}
      >
        {model.trans.__('Make available at %1', site)}
      </Button>
      <label>
        {model.trans.__('for')}{' '}
        <LifetimeSelect
          model={model}
          label={model.trans.__('Lifetime')}
          testid="itw-dl-lifetime"
          value={days}
          onChange={props.onDays}
        />
      </label>
    </div>
  );
}

/** The user's rule at this site while it replicates: files there so far. */
function ReplicationProgress(props: { model: DataLakeModel; details: IDidDetails }): JSX.Element {
  const { model } = props;
  const trans = model.trans;
  const rule = props.details.here?.rule;
  const files = rule
    ? trans.__(
        ': %1 of %2 files there',
        rule.locks.ok,
        rule.locks.ok + rule.locks.replicating + rule.locks.stuck
      )
    : '';
  return (
    <div className="itw-dl-progress" data-testid="itw-dl-progress">
      <span className="itw-dl-spinner" aria-hidden="true" />
      {trans.__('Copying to %1', model.config?.rse ?? '')}
      {files}{' '}
      {trans.__(
        '— checking again now and then (at least every %1 s)…',
        model.settings.pollMaxSeconds
      )}
    </div>
  );
}

/** What can be done here: make available, the replication's progress, or why neither. */
function HereAction(props: {
  model: DataLakeModel;
  details: IDidDetails;
  site: string;
  days: number;
  onDays: (days: number) => void;
}): JSX.Element | null {
  const { model, details, site } = props;
  const config = model.config;
  if (!config?.rse) {
    return (
      <div className="itw-dl-muted" data-testid="itw-dl-no-rse">
        {config?.rse_reason ??
          model.trans.__(
            'Data cannot be made available at %1: it has no scratch storage (RSE) in Rucio.',
            site
          )}
      </div>
    );
  }
  const here = details.here?.state ?? 'NOT_AVAILABLE';
  if (here === 'NOT_AVAILABLE' || here === 'STUCK') {
    return <MakeAvailable model={model} site={site} days={props.days} onDays={props.onDays} />;
  }
  if (here === 'REPLICATING') {
    return <ReplicationProgress model={model} details={details} />;
  }
  return null;
}

/** The opened DID's files, or their local paths once a replica is here (virtualised). */
function ContentList(props: {
  model: DataLakeModel;
  details: IDidDetails;
  site: string;
  onCopied: (path: string) => void;
}): JSX.Element | null {
  const { model, details } = props;
  const trans = model.trans;
  const content = model.content;
  const total = content?.total;
  let body: JSX.Element | null = null;
  if (content?.error) {
    body = <ErrorBanner message={content.error} onRetry={() => content.retry()} />;
  } else if (content && !content.ready) {
    body = <StatusLine status={{ kind: 'loading' }} loading={trans.__('Listing the files…')} />;
  } else if (content && content.count === 0) {
    body = <Empty>{trans.__('This %1 is empty.', details.type)}</Empty>;
  } else if (content) {
    body = (
      <VirtualList
        source={content}
        testid="itw-dl-content"
        onVisible={(a, b) => model.setVisibleContent(a, b)}
        render={item => (
          <ContentRow
            item={item}
            model={model}
            withPaths={model.contentHasPaths}
            onCopied={props.onCopied}
          />
        )}
      />
    );
  }
  return (
    <>
      <div className="itw-dl-content-head" data-testid="itw-dl-content-head">
        {model.contentHasPaths ? trans.__('Local paths at %1', props.site) : trans.__('Files')}
        {total !== null && total !== undefined ? ` · ${formatCount(total)}` : ''}
      </div>
      {body}
    </>
  );
}

/** Ask for a variable name and attach the opened DID to the active notebook under it. */
async function addToNotebook(model: DataLakeModel, scope: string, name: string): Promise<void> {
  const trans = model.trans;
  const guess = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1');
  const res = await InputDialog.getText({
    title: trans.__('Attach %1 to the notebook', `${scope}:${name}`),
    label: trans.__('Python variable name'),
    text: guess.slice(0, 40)
  });
  if (!res.button.accept || !res.value) {
    return;
  }
  const variable = res.value;
  const out = model.attachToNotebook(variable);
  if (!out.ok) {
    Notification.error(out.message, { autoClose: 8000 });
    return;
  }
  Notification.success(out.message, { autoClose: 5000 });
  if (out.injected) {
    Notification.promise(out.injected, {
      pending: { message: trans.__("Setting %1 in the notebook's kernel…", variable), options: {} },
      success: { message: (msg: unknown) => String(msg), options: { autoClose: 8000 } },
      error: {
        message: (e: unknown) =>
          trans.__('%1 is attached but not set in the kernel: %2', variable, errorMessage(e)),
        options: { autoClose: false }
      }
    });
  }
}

/** The opened DID: replicas per RSE, make-available here, rule progress, content and paths. */
export function DidDetails(props: { model: DataLakeModel }): JSX.Element | null {
  const { model } = props;
  const trans = model.trans;
  const { selected, details, config } = model;
  const [lifetime, setLifetime] = useState<number | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  if (!selected) {
    return null;
  }
  const did = `${selected.scope}:${selected.name}`;
  const onCopied = (p: string): void => {
    setCopied(p);
    Notification.success(trans.__('Copied %1', p), { autoClose: 3000 });
  };
  const days = lifetime ?? model.defaultLifetime ?? 0;
  const here = details?.here?.state ?? 'NOT_AVAILABLE';
  const site = siteLabel(config?.site, config?.site_title) ?? trans.__('this site');

  return (
    <section className="itw-dl-details" data-testid="itw-dl-details" data-did={did}>
      <header className="itw-dl-details-head">
        <div className="itw-dl-details-title">
          <span className="itw-dl-type">{details?.type ?? ''}</span>
          <strong title={did} data-testid="itw-dl-details-name">
            {did}
          </strong>
        </div>
        <Button
          small
          minimal
          title={trans.__('Reload')}
          onClick={() => void model.reloadDetails(true)}
        >
          <refreshIcon.react tag="span" />
        </Button>
        <Button
          small
          minimal
          title={trans.__('Close')}
          data-testid="itw-dl-close"
          onClick={() => model.closeDid()}
        >
          <closeIcon.react tag="span" />
        </Button>
      </header>
      <StatusLine
        status={model.detailsStatus}
        loading={trans.__('Asking Rucio about this DID…')}
        onRetry={() => void model.reloadDetails(true)}
      />
      {details && (
        <>
          <DidFacts model={model} details={details} />
          <Replicas model={model} details={details} />
          <div className="itw-dl-here" data-testid="itw-dl-here" data-state={here}>
            <span>{trans.__('At %1:', site)}</span>
            <Badge label={config?.rse ?? undefined} state={here} />
          </div>
          <HereAction
            model={model}
            details={details}
            site={site}
            days={days}
            onDays={setLifetime}
          />
          {model.actionStatus.kind === 'error' && (
            <ErrorBanner
              message={model.actionStatus.message}
              testid="itw-dl-action-error"
              onRetry={model.canRetryAction ? () => void model.retryAction() : undefined}
            />
          )}
          <div className="itw-dl-actions">
            <Button
              small
              minimal
              data-testid="itw-dl-add-notebook"
              onClick={() => void addToNotebook(model, selected.scope, selected.name)}
            >
              <addIcon.react tag="span" elementPosition="left" />
              {trans.__('Add to notebook')}
            </Button>
          </div>
          {copied && (
            <div className="itw-dl-copied" data-testid="itw-dl-copied">
              {trans.__('Copied')} <code>{copied}</code>
            </div>
          )}
          <ContentList model={model} details={details} site={site} onCopied={onCopied} />
        </>
      )}
    </section>
  );
}
