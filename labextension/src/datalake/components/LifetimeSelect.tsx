import { HTMLSelect } from '@jupyterlab/ui-components';
import React from 'react';

import { DataLakeModel } from '../model';

/**
 * The lifetime of a replication rule, in days: the choices of the DataLake settings up to the
 * site's maximum (make available, and extend in My replicas).
 */
export function LifetimeSelect(props: {
  model: DataLakeModel;
  value: number;
  onChange: (days: number) => void;
  label: string;
  testid?: string;
}): JSX.Element {
  const { model } = props;
  return (
    <HTMLSelect
      aria-label={props.label}
      data-testid={props.testid}
      value={String(props.value)}
      onChange={e => props.onChange(Number(e.currentTarget.value))}
      options={model.lifetimeChoices.map(d => ({
        value: String(d),
        label: model.trans._n('%1 day', '%1 days', d)
      }))}
    />
  );
}
