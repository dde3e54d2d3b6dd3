import { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  Button,
  closeIcon,
  filterIcon,
  HTMLSelect,
  InputGroup,
  searchIcon
} from '@jupyterlab/ui-components';
import React from 'react';

import { DataLakeModel, IFilterRow } from '../model';
import { TypeFilter } from '../../tokens';

/** The type filter's choices, in the user's language. */
function typeChoices(trans: TranslationBundle): { value: TypeFilter; label: string }[] {
  return [
    { value: 'all', label: trans.__('All types') },
    { value: 'collection', label: trans.__('Collections') },
    { value: 'container', label: trans.__('Containers') },
    { value: 'dataset', label: trans.__('Datasets') },
    { value: 'file', label: trans.__('Files') }
  ];
}

const OPS = ['=', '!=', '>', '>=', '<', '<='];

/** Search box, scope picker, type filter and the metadata filter builder. */
export function SearchForm(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  const { search, scopes } = model;
  const trans = model.trans;
  const rows = search.filterRows;
  const update = (next: IFilterRow[]): void => model.setSearch({ filterRows: next });
  const submit = (e?: React.FormEvent): void => {
    e?.preventDefault();
    model.runSearch();
  };
  return (
    <form className="itw-dl-search" onSubmit={submit} data-testid="itw-dl-search">
      <div className="itw-dl-search-line">
        <HTMLSelect
          aria-label={trans.__('Scope')}
          data-testid="itw-dl-scope"
          value={search.scope}
          onChange={e => model.setSearch({ scope: e.currentTarget.value })}
          options={scopes.length ? scopes : [trans.__('(no scopes)')]}
        />
        <InputGroup
          className="itw-dl-name"
          type="text"
          placeholder={trans.__('name, * as wildcard')}
          aria-label={trans.__('DID name')}
          data-testid="itw-dl-query"
          value={search.name}
          onChange={e => model.setSearch({ name: e.currentTarget.value })}
        />
      </div>
      <div className="itw-dl-search-line">
        <HTMLSelect
          aria-label={trans.__('Type')}
          data-testid="itw-dl-type"
          value={search.type}
          onChange={e => model.setSearch({ type: e.currentTarget.value as TypeFilter })}
          options={typeChoices(trans)}
        />
        <Button
          small
          minimal
          type="button"
          title={trans.__('Add a metadata filter')}
          data-testid="itw-dl-add-filter"
          onClick={() => update([...rows, { key: '', op: '=', value: '' }])}
        >
          <filterIcon.react tag="span" elementPosition="left" />
          {trans.__('Filter')}
        </Button>
        <Button
          type="submit"
          small
          data-testid="itw-dl-search-button"
          title={trans.__('Search Rucio')}
        >
          <searchIcon.react tag="span" elementPosition="left" />
          {trans.__('Search')}
        </Button>
      </div>
      {rows.length > 0 && (
        <div className="itw-dl-filters" data-testid="itw-dl-filters">
          {rows.map((row, i) => (
            <div className="itw-dl-filter-row" key={i} data-testid="itw-dl-filter-row">
              <InputGroup
                placeholder={trans.__('key')}
                aria-label={trans.__('Metadata key')}
                value={row.key}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, key: e.currentTarget.value } : r)))
                }
              />
              <HTMLSelect
                aria-label={trans.__('Operator')}
                value={row.op}
                options={OPS}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, op: e.currentTarget.value } : r)))
                }
              />
              <InputGroup
                placeholder={trans.__('value')}
                aria-label={trans.__('Metadata value')}
                value={row.value}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, value: e.currentTarget.value } : r)))
                }
              />
              <Button
                small
                minimal
                type="button"
                title={trans.__('Remove this filter')}
                onClick={() => update(rows.filter((_, j) => j !== i))}
              >
                <closeIcon.react tag="span" />
              </Button>
            </div>
          ))}
          <div className="itw-dl-filter-text">
            <Button
              small
              minimal
              type="button"
              title={trans.__('AND another filter')}
              onClick={() => update([...rows, { key: '', op: '=', value: '' }])}
            >
              <addIcon.react tag="span" />
            </Button>
            <code data-testid="itw-dl-filter-text">
              {search.filters || trans.__('(no filter yet)')}
            </code>
          </div>
        </div>
      )}
    </form>
  );
}
