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

const TYPES: { value: TypeFilter; label: string }[] = [
  { value: 'all', label: 'All types' },
  { value: 'collection', label: 'Collections' },
  { value: 'container', label: 'Containers' },
  { value: 'dataset', label: 'Datasets' },
  { value: 'file', label: 'Files' }
];

const OPS = ['=', '!=', '>', '>=', '<', '<='];

/** Search box, scope picker, type filter and the metadata filter builder. */
export function SearchForm(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  const { search, scopes } = model;
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
          aria-label="Scope"
          data-testid="itw-dl-scope"
          value={search.scope}
          onChange={e => model.setSearch({ scope: e.currentTarget.value })}
          options={scopes.length ? scopes : ['(no scopes)']}
        />
        <InputGroup
          className="itw-dl-name"
          type="text"
          placeholder="name, * as wildcard"
          aria-label="DID name"
          data-testid="itw-dl-query"
          value={search.name}
          onChange={e => model.setSearch({ name: e.currentTarget.value })}
        />
      </div>
      <div className="itw-dl-search-line">
        <HTMLSelect
          aria-label="Type"
          data-testid="itw-dl-type"
          value={search.type}
          onChange={e => model.setSearch({ type: e.currentTarget.value as TypeFilter })}
          options={TYPES}
        />
        <Button
          small
          minimal
          type="button"
          title="Add a metadata filter"
          data-testid="itw-dl-add-filter"
          onClick={() => update([...rows, { key: '', op: '=', value: '' }])}
        >
          <filterIcon.react tag="span" elementPosition="left" />
          Filter
        </Button>
        <Button type="submit" small data-testid="itw-dl-search-button" title="Search Rucio">
          <searchIcon.react tag="span" elementPosition="left" />
          Search
        </Button>
      </div>
      {rows.length > 0 && (
        <div className="itw-dl-filters" data-testid="itw-dl-filters">
          {rows.map((row, i) => (
            <div className="itw-dl-filter-row" key={i} data-testid="itw-dl-filter-row">
              <InputGroup
                placeholder="key"
                aria-label="Metadata key"
                value={row.key}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, key: e.currentTarget.value } : r)))
                }
              />
              <HTMLSelect
                aria-label="Operator"
                value={row.op}
                options={OPS}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, op: e.currentTarget.value } : r)))
                }
              />
              <InputGroup
                placeholder="value"
                aria-label="Metadata value"
                value={row.value}
                onChange={e =>
                  update(rows.map((r, j) => (j === i ? { ...r, value: e.currentTarget.value } : r)))
                }
              />
              <Button
                small
                minimal
                type="button"
                title="Remove this filter"
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
              title="AND another filter"
              onClick={() => update([...rows, { key: '', op: '=', value: '' }])}
            >
              <addIcon.react tag="span" />
            </Button>
            <code data-testid="itw-dl-filter-text">{search.filters || '(no filter yet)'}</code>
          </div>
        </div>
      )}
    </form>
  );
}
