import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Button, refreshIcon } from '@jupyterlab/ui-components';
import React, { createContext, useContext } from 'react';

import { TRANSLATION_DOMAIN } from '../../tokens';
import { Status } from '../model';

/** The panel's translations for the small shared components (DataLakeView provides it). */
export const TransContext = createContext<TranslationBundle>(
  nullTranslator.load(TRANSLATION_DOMAIN)
);

/** An error banner with the server's sentence and a Retry. */
export function ErrorBanner(props: {
  message: string;
  onRetry?: () => void;
  testid?: string;
}): JSX.Element {
  const trans = useContext(TransContext);
  return (
    <div className="itw-dl-error" role="alert" data-testid={props.testid ?? 'itw-dl-error'}>
      <span className="itw-dl-error-text">{props.message}</span>
      {props.onRetry && (
        <Button
          small
          minimal
          onClick={props.onRetry}
          data-testid="itw-dl-retry"
          title={trans.__('Retry')}
        >
          <refreshIcon.react tag="span" elementPosition="left" />
          {trans.__('Retry')}
        </Button>
      )}
    </div>
  );
}

export function Loading(props: { what: string; testid?: string }): JSX.Element {
  return (
    <div className="itw-dl-loading" data-testid={props.testid ?? 'itw-dl-loading'}>
      <span className="itw-dl-spinner" aria-hidden="true" />
      {props.what}
    </div>
  );
}

export function Empty(props: { children: React.ReactNode; testid?: string }): JSX.Element {
  return (
    <div className="itw-dl-empty" data-testid={props.testid ?? 'itw-dl-empty'}>
      {props.children}
    </div>
  );
}

/** Status → the banner/loading line, or null when ready/idle. */
export function StatusLine(props: {
  status: Status;
  loading: string;
  onRetry?: () => void;
  testid?: string;
}): JSX.Element | null {
  const { status } = props;
  if (status.kind === 'loading') {
    return <Loading what={props.loading} />;
  }
  if (status.kind === 'error') {
    return <ErrorBanner message={status.message} onRetry={props.onRetry} testid={props.testid} />;
  }
  return null;
}

const STATE_CLASS: Record<string, string> = {
  AVAILABLE: 'ok',
  OK: 'ok',
  PARTIAL: 'partial',
  REPLICATING: 'busy',
  COPYING: 'busy',
  INJECT: 'busy',
  WAITING_APPROVAL: 'busy',
  TEMPORARY_UNAVAILABLE: 'bad',
  BEING_DELETED: 'bad',
  NOT_A_FILE: 'none',
  UNAVAILABLE: 'bad',
  NOT_AVAILABLE: 'none',
  STUCK: 'bad',
  SUSPENDED: 'bad',
  BAD: 'bad'
};

/** A replica or rule state in words (Rucio's other states: the state itself, lower case). */
function stateWords(trans: TranslationBundle, state: string): string {
  const words: Record<string, string> = {
    AVAILABLE: trans.__('available'),
    OK: trans.__('available'),
    PARTIAL: trans.__('partly available'),
    REPLICATING: trans.__('replicating'),
    NOT_AVAILABLE: trans.__('not here'),
    COPYING: trans.__('copying'),
    NOT_A_FILE: trans.__('dataset'),
    STUCK: trans.__('stuck'),
    UNAVAILABLE: trans.__('unavailable')
  };
  return words[state] ?? state.toLowerCase();
}

/** A coloured availability badge (RSE name + state). */
export function Badge(props: { label?: string; state: string; title?: string }): JSX.Element {
  const cls = STATE_CLASS[props.state] ?? 'none';
  const words = stateWords(useContext(TransContext), props.state);
  return (
    <span
      className={`itw-dl-badge itw-dl-badge-${cls}`}
      title={props.title ?? `${props.label ? props.label + ': ' : ''}${words}`}
      data-state={props.state}
    >
      {props.label ? `${props.label} · ${words}` : words}
    </span>
  );
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '—';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * The site as people say it: the site name with the casing the site title uses (VEGA → Vega);
 * null without a site.
 */
export function siteLabel(site: string | null | undefined, title?: string | null): string | null {
  if (!site) {
    return null;
  }
  const esc = site.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = title ? new RegExp(`\\b${esc}\\b`, 'i').exec(title) : null;
  return m ? m[0] : site;
}
