import { Clipboard, Notification } from '@jupyterlab/apputils';
import { Button, copyIcon, folderIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { DataLakeModel } from '../model';
import { IContentItem, IDidDetails } from '../../tokens';
import { Badge, Empty, ErrorBanner, formatBytes, formatCount, StatusLine } from './common';
import { VirtualList } from './VirtualList';

/** Copy a path to the clipboard (async API first; JupyterLab's helper as the fallback). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}

function dirname(path: string): string {
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Copy and open-folder buttons of one local path. */
export function PathActions(props: {
  model: DataLakeModel;
  path: string;
  onCopied: (path: string) => void;
}): JSX.Element {
  const { model, path } = props;
  const trans = model.trans;
  const folder = dirname(path);
  const where = model.browsable(folder);
  return (
    <span className="itw-dl-path-actions">
      <Button
        small
        minimal
        title={trans.__('Copy %1', path)}
        data-testid="itw-dl-copy-path"
        onClick={() => {
          void copyText(path).then(() => props.onCopied(path));
        }}
      >
        <copyIcon.react tag="span" />
      </Button>
      <Button
        small
        minimal
        title={
          where.relative !== null
            ? trans.__('Show %1 in the file browser', folder)
            : (where.reason ?? '')
        }
        data-testid="itw-dl-open-folder"
        onClick={() => {
          if (where.relative !== null) {
            void model.host.openFolder(where.relative);
          } else {
            Notification.warning(
              where.reason ?? trans.__('The file browser cannot show this folder.'),
              {
                autoClose: 8000,
                actions: [
                  {
                    label: trans.__('Copy path'),
                    callback: () => {
                      void copyText(path).then(() => props.onCopied(path));
                    }
                  }
                ]
              }
            );
          }
        }}
      >
        <folderIcon.react tag="span" />
      </Button>
    </span>
  );
}

function ContentRow(props: {
  item: IContentItem;
  model: DataLakeModel;
  withPaths: boolean;
  onCopied: (p: string) => void;
}): JSX.Element {
  const { item, model, withPaths } = props;
  const path = 'path' in item ? item.path : null;
  if (withPaths && path) {
    // the local path, cut at its start when too long (the file name stays visible)
    return (
      <>
        <span className="itw-dl-row-path" title={path} data-testid="itw-dl-path" dir="rtl">
          <bdi dir="ltr">{path}</bdi>
        </span>
        <PathActions model={model} path={path} onCopied={props.onCopied} />
      </>
    );
  }
  return (
    <>
      <span className="itw-dl-row-name" title={`${item.scope}:${item.name}`}>
        {item.name}
      </span>
      {withPaths ? (
        <Badge state={'state' in item ? item.state : 'NOT_AVAILABLE'} />
      ) : (
        <span className="itw-dl-row-size">{formatBytes(item.bytes)}</span>
      )}
    </>
  );
}

/** The opened DID's files, or their local paths once a replica is here (virtualised). */
export function ContentList(props: {
  model: DataLakeModel;
  details: IDidDetails;
  site: string;
  onCopied: (path: string) => void;
}): JSX.Element | null {
  const { model, details } = props;
  const trans = model.trans;
  const content = model.content;
  const total = content?.total;
  let body: JSX.Element | null = null;
  if (content?.error) {
    body = <ErrorBanner message={content.error} onRetry={() => content.retry()} />;
  } else if (content && !content.ready) {
    body = <StatusLine status={{ kind: 'loading' }} loading={trans.__('Listing the files…')} />;
  } else if (content && content.count === 0) {
    body = <Empty>{trans.__('This %1 is empty.', details.type)}</Empty>;
  } else if (content) {
    body = (
      <VirtualList
        source={content}
        testid="itw-dl-content"
        onVisible={(a, b) => model.setVisibleContent(a, b)}
        render={item => (
          <ContentRow
            item={item}
            model={model}
            withPaths={model.contentHasPaths}
            onCopied={props.onCopied}
          />
        )}
      />
    );
  }
  return (
    <>
      <div className="itw-dl-content-head" data-testid="itw-dl-content-head">
        {model.contentHasPaths ? trans.__('Local paths at %1', props.site) : trans.__('Files')}
        {total !== null && total !== undefined ? ` · ${formatCount(total)}` : ''}
      </div>
      {body}
    </>
  );
}
