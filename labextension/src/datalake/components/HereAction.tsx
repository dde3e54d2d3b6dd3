import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import { DataLakeModel } from '../model';
import { IDidDetails } from '../../tokens';
import { LifetimeSelect } from './LifetimeSelect';

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
export function HereAction(props: {
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
