import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { hubSignInUrl } from '../../request';
import { DataLakeModel } from '../model';
import { IDid } from '../../tokens';
import { Empty, ErrorBanner, formatBytes, formatCount, StatusLine, TransContext } from './common';
import { DidDetails } from './DidDetails';
import { RulesView } from './RulesView';
import { SearchForm } from './SearchForm';
import { VirtualList } from './VirtualList';
import { useChanged } from '../../components/useChanged';

function ResultRow(props: { did: IDid; model: DataLakeModel }): JSX.Element {
  const { did, model } = props;
  const open = model.selected?.scope === did.scope && model.selected?.name === did.name;
  return (
    <button
      className={`itw-dl-result${open ? ' itw-dl-selected' : ''}`}
      data-testid="itw-dl-result"
      data-did={`${did.scope}:${did.name}`}
      title={`${did.scope}:${did.name}`}
      onClick={() => void model.openDid(did.scope, did.name)}
    >
      <span className={`itw-dl-type itw-dl-type-${did.type}`}>{did.type[0].toUpperCase()}</span>
      <span className="itw-dl-row-name">{did.name}</span>
      <span className="itw-dl-row-size">
        {did.type !== 'file' && did.length !== null && did.length !== undefined
          ? `${formatCount(did.length)} · `
          : ''}
        {formatBytes(did.bytes)}
      </span>
    </button>
  );
}

function Results(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  const trans = model.trans;
  const results = model.results;
  if (!results) {
    // the wildcard is shown as code: the sentence is cut where the translation puts it
    const [before, after] = trans
      .__(
        'Pick a scope and search by name (wildcards %1) or metadata to find data in the interTwin DataLake.',
        '\u0000'
      )
      .split('\u0000');
    return (
      <Empty testid="itw-dl-start">
        {before}
        <code>*</code>
        {after}
      </Empty>
    );
  }
  if (results.error && results.count <= 1) {
    return <ErrorBanner message={results.error} onRetry={() => model.runSearch()} />;
  }
  if (!results.ready) {
    return <StatusLine status={{ kind: 'loading' }} loading={trans.__('Searching Rucio…')} />;
  }
  if (results.count === 0) {
    return (
      <Empty testid="itw-dl-no-results">
        {trans.__('Nothing in %1 matches.', model.search.scope)}
      </Empty>
    );
  }
  return (
    <>
      <div className="itw-dl-count" data-testid="itw-dl-result-count">
        {results.total !== null
          ? trans.__('%1 found', formatCount(results.total))
          : trans.__('%1+ found', formatCount(results.count - 1))}
      </div>
      {results.error && <ErrorBanner message={results.error} onRetry={() => results.retry()} />}
      <VirtualList
        source={results}
        testid="itw-dl-results"
        render={did => <ResultRow did={did} model={model} />}
      />
    </>
  );
}

/** The user's hub sign-in has ended: the server's sentence and a link to sign in again. */
function SignInAgain(props: { message: string }): JSX.Element {
  const trans = React.useContext(TransContext);
  const url = hubSignInUrl();
  return (
    <div className="itw-dl-error itw-dl-signin" role="alert" data-testid="itw-dl-signin">
      <span className="itw-dl-error-text">{props.message}</span>
      {url && (
        <a href={url} target="_top" data-testid="itw-dl-signin-link">
          {trans.__('Sign in again')}
        </a>
      )}
    </div>
  );
}

export function DataLakeView(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  useChanged(model.changed);
  const { config, configStatus } = model;
  const trans = model.trans;
  return (
    <TransContext.Provider value={trans}>
      <div className="itw-sidebar-body itw-dl" data-testid="itw-datalake">
        <header className="itw-dl-head">
          <h2 className="itw-title">{trans.__('DataLake')}</h2>
          <span className="itw-dl-who" data-testid="itw-dl-who">
            {config
              ? `${config.account ?? trans.__('anonymous')} @ ${config.site ?? trans.__('no site')}`
              : ''}
          </span>
        </header>
        {model.signInAgain && <SignInAgain message={model.signInAgain} />}
        <div className="itw-dl-tabs" role="tablist">
          {(['explore', 'replicas'] as const).map(v => (
            <button
              key={v}
              role="tab"
              aria-selected={model.view === v}
              className={`itw-dl-tab${model.view === v ? ' itw-dl-tab-active' : ''}`}
              data-testid={`itw-dl-tab-${v}`}
              onClick={() => model.setView(v)}
            >
              {v === 'explore' ? trans.__('Explore') : trans.__('My replicas')}
            </button>
          ))}
        </div>
        {configStatus.kind !== 'ready' ? (
          <StatusLine
            status={configStatus}
            loading={trans.__('Connecting to the DataLake…')}
            onRetry={() => void model.start()}
            testid="itw-dl-error"
          />
        ) : model.view === 'replicas' ? (
          <RulesView model={model} />
        ) : (
          <div className="itw-dl-explore">
            <SearchForm model={model} />
            <div className={`itw-dl-results-pane${model.selected ? ' itw-dl-with-details' : ''}`}>
              <Results model={model} />
            </div>
            <DidDetails model={model} />
          </div>
        )}
      </div>
    </TransContext.Provider>
  );
}

/** The "DataLake" left-sidebar panel. */
export class DataLakePanel extends ReactWidget {
  constructor(readonly model: DataLakeModel) {
    super();
    this.addClass('itw-panel');
    this.addClass('itw-sidebar-panel');
    this.addClass('itw-dl-panel');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setActive(true);
    if (this.model.configStatus.kind === 'idle') {
      void this.model.start();
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setActive(false); // a closed panel does not poll Rucio
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  render(): JSX.Element {
    return <DataLakeView model={this.model} />;
  }
}
