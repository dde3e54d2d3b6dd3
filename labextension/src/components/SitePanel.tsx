import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { ApiError, requestAPI } from '../request';
import { ISiteContext } from '../tokens';

type State =
  { kind: 'loading' } | { kind: 'ready'; site: ISiteContext } | { kind: 'error'; message: string };

/** Where this session runs: the site and its scratch storage. */
export function SiteView(props: { trans: TranslationBundle }): JSX.Element {
  const { trans } = props;
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
    return <p className="itw-muted">{trans.__('Finding out where this session runs…')}</p>;
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
      <dt>{trans.__('Site')}</dt>
      <dd data-testid="itw-site-title">{site.title}</dd>
      <dt>{trans.__('Scratch storage (Rucio RSE)')}</dt>
      <dd>{site.scratch_rse ?? trans.__('none at this site')}</dd>
      <dt>{trans.__('Scratch mounted at')}</dt>
      <dd>
        <code>{site.scratch_path ?? '—'}</code>
      </dd>
    </dl>
  );
}

export class SitePanel extends ReactWidget {
  constructor(readonly trans: TranslationBundle) {
    super();
    this.addClass('itw-panel');
  }

  render(): JSX.Element {
    return (
      <div>
        <h2 className="itw-title">{this.trans.__('interTwin')}</h2>
        <SiteView trans={this.trans} />
      </div>
    );
  }
}
