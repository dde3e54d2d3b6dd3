import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { ApiError, requestAPI } from '../request';
import { ISiteContext } from '../tokens';

type State =
  { kind: 'loading' } | { kind: 'ready'; site: ISiteContext } | { kind: 'error'; message: string };

/** Where this session runs: the site and its scratch storage. */
export function SiteView(): JSX.Element {
  const [state, setState] = useState<State>({ kind: 'loading' });
  useEffect(() => {
    requestAPI<ISiteContext>('site')
      .then(site => setState({ kind: 'ready', site }))
      .catch((e: unknown) =>
        setState({
          kind: 'error',
          message: e instanceof ApiError ? e.message : String(e)
        })
      );
  }, []);

  if (state.kind === 'loading') {
    return <p className="itw-muted">Finding out where this session runs…</p>;
  }
  if (state.kind === 'error') {
    return (
      <p className="itw-error" role="alert">
        {state.message}
      </p>
    );
  }
  const { site } = state;
  return (
    <dl className="itw-site">
      <dt>Site</dt>
      <dd data-testid="itw-site-title">{site.title}</dd>
      <dt>Scratch storage (Rucio RSE)</dt>
      <dd>{site.scratch_rse ?? 'none at this site'}</dd>
      <dt>Scratch mounted at</dt>
      <dd>
        <code>{site.scratch_path ?? '—'}</code>
      </dd>
    </dl>
  );
}

export class SitePanel extends ReactWidget {
  constructor() {
    super();
    this.addClass('itw-panel');
  }

  render(): JSX.Element {
    return (
      <div>
        <h2 className="itw-title">interTwin</h2>
        <SiteView />
      </div>
    );
  }
}
