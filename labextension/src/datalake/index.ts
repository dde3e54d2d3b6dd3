import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ATTACHMENTS_KEY, DATALAKE_PLUGIN_ID, IRucioAttachment } from '../tokens';
import { DataLakePanel } from './components/DataLakePanel';
import { DataLakeModel, IDataLakeHost, INotebookHandle } from './model';

const DATALAKE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <ellipse cx="12" cy="5" rx="8" ry="3"/>
    <path d="M4 7.5v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
    <path d="M4 14v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
  </g></svg>`;

export const datalakeIcon = new LabIcon({ name: 'intertwin:datalake', svgstr: DATALAKE_SVG });

/** The metadata side of a notebook panel, without depending on @jupyterlab/notebook. */
interface INotebookLike extends Widget {
  context?: { path: string };
  content?: {
    model?: {
      getMetadata(key: string): unknown;
      setMetadata(key: string, value: unknown): void;
    } | null;
  };
}

function notebookHandle(widget: Widget | null): INotebookHandle | null {
  const nb = widget as INotebookLike | null;
  const model = nb?.content?.model;
  if (!nb || !nb.hasClass('jp-NotebookPanel') || !model || nb.isDisposed) {
    return null;
  }
  return {
    title: nb.title.label || nb.context?.path || 'the notebook',
    getAttachments: () => {
      const v = model.getMetadata(ATTACHMENTS_KEY);
      return Array.isArray(v) ? (v as IRucioAttachment[]) : [];
    },
    setAttachments: value => model.setMetadata(ATTACHMENTS_KEY, value)
  };
}

/** The DataLake sidebar: browse Rucio, make data available at this site, attach it. */
export const datalakePlugin: JupyterFrontEndPlugin<void> = {
  id: DATALAKE_PLUGIN_ID,
  description: 'interTwin DataLake: browse Rucio and replicate to the scratch of this site',
  autoStart: true,
  optional: [ILabShell, ILayoutRestorer],
  activate: (app: JupyterFrontEnd, labShell: ILabShell | null, restorer: ILayoutRestorer | null) => {
    let lastNotebook: Widget | null = null;
    labShell?.currentChanged.connect((_, change) => {
      if (notebookHandle(change.newValue)) {
        lastNotebook = change.newValue;
      }
    });
    const host: IDataLakeHost = {
      activeNotebook: () => notebookHandle(app.shell.currentWidget) ?? notebookHandle(lastNotebook),
      openFolder: async relative => {
        await app.commands.execute('filebrowser:go-to-path', { path: `/${relative}` });
        app.shell.activateById('filebrowser');
      },
      serverRoot: () => PageConfig.getOption('serverRoot') || null
    };
    const panel = new DataLakePanel(new DataLakeModel(host));
    panel.id = 'intertwin-datalake';
    panel.title.icon = datalakeIcon;
    panel.title.caption = 'DataLake (Rucio)';
    app.shell.add(panel, 'left', { rank: 610 });
    restorer?.add(panel, 'intertwin-datalake');
  }
};
