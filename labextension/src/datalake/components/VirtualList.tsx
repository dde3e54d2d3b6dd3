import React, { useEffect, useReducer } from 'react';
import { List, RowComponentProps } from 'react-window';

import { RowSource } from '../rows';

export const ROW_HEIGHT = 28;

interface IRowProps<T> {
  source: RowSource<T>;
  render: (item: T, index: number) => React.ReactNode;
  /** bumped when pages arrive, so react-window redraws the rows in view */
  version: number;
}

function Row<T>(props: RowComponentProps<IRowProps<T>>): JSX.Element {
  const { index, style, source, render, ariaAttributes } = props;
  const item = source.get(index);
  return (
    <div
      style={style}
      className="itw-dl-row"
      data-testid="itw-dl-row"
      data-index={index}
      {...ariaAttributes}
    >
      {item === undefined ? (
        <span className="itw-dl-row-placeholder">loading row {index + 1}…</span>
      ) : (
        render(item, index)
      )}
    </div>
  );
}

/**
 * A virtualised list (react-window) over a paged RowSource: only the rows in view (plus a few
 * overscanned) are in the DOM, and the pages under them are fetched as the user scrolls.
 */
export function VirtualList<T>(props: {
  source: RowSource<T>;
  render: (item: T, index: number) => React.ReactNode;
  testid: string;
  onVisible?: (start: number, stop: number) => void;
}): JSX.Element {
  const { source, render, testid, onVisible } = props;
  const [version, bump] = useReducer((x: number) => x + 1, 0);
  useEffect(() => {
    source.changed.connect(bump);
    return () => {
      source.changed.disconnect(bump);
    };
  }, [source]);
  return (
    <div className="itw-dl-list" data-testid={testid} data-count={source.count}>
      <List<IRowProps<T>>
        rowComponent={Row as (p: RowComponentProps<IRowProps<T>>) => JSX.Element}
        rowCount={source.count}
        rowHeight={ROW_HEIGHT}
        rowProps={{ source, render, version }}
        overscanCount={10}
        onRowsRendered={(_visible, all) => {
          source.ensure(all.startIndex, all.stopIndex);
          onVisible?.(all.startIndex, all.stopIndex);
        }}
        className="itw-dl-list-scroller"
      />
    </div>
  );
}
