import { InputDialog, Notification } from '@jupyterlab/apputils';
import { addIcon, Button, closeIcon, refreshIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { errorMessage } from '../../request';
import { DataLakeModel } from '../model';
import { IDidDetails } from '../../tokens';
import {
  Badge,
  Empty,
  ErrorBanner,
  formatBytes,
  formatCount,
  siteLabel,
  StatusLine
} from './common';
import { ContentList } from './ContentList';
import { HereAction } from './HereAction';

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
