import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { useChanged } from '../../components/useChanged';

import { JobsModel, sessionText } from '../model';

function SessionStatusView(props: { model: JobsModel; onClick: () => void }): JSX.Element | null {
  const { model, onClick } = props;
  useChanged(model.changed);
  const text = sessionText(model.sessionJob, model.site, model.trans);
  if (!text) {
    return null;
  }
  return (
    <span
      className="itw-session-status"
      data-testid="itw-session-status"
      role="button"
      tabIndex={0}
      title={
        model.sessionJob
          ? `${model.sessionJob.sentence} — ${model.trans.__('open the Jobs panel')}`
          : model.trans.__('open the Jobs panel')
      }
      onClick={onClick}
      onKeyDown={e => {
        if (e.key === 'Enter' || e.key === ' ') {
          onClick();
        }
      }}
    >
      {text}
    </span>
  );
}

/** The status-bar item: where this session runs ("Vega · 2 × A100 · batch job 1003"). */
export class SessionStatus extends ReactWidget {
  constructor(
    readonly model: JobsModel,
    readonly onOpen: () => void
  ) {
    super();
    this.addClass('jp-StatusBar-GroupItem');
    this.addClass('itw-session-status-item');
  }

  render(): JSX.Element {
    return <SessionStatusView model={this.model} onClick={this.onOpen} />;
  }
}
