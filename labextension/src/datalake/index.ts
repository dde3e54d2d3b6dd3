import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { Kernel } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ATTACHMENTS_KEY, DATALAKE_PLUGIN_ID, IRucioAttachment } from '../tokens';
import { errorMessage } from '../request';
import { DataLakePanel } from './components/DataLakePanel';
import { answerResolveDids, injectAttachments } from './injection';
import { DataLakeModel, IDataLakeHost, INotebookHandle } from './model';

const DATALAKE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <ellipse cx="12" cy="5" rx="8" ry="3"/>
    <path d="M4 7.5v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
    <path d="M4 14v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
  </g></svg>`;

export const datalakeIcon = new LabIcon({ name: 'intertwin:datalake', svgstr: DATALAKE_SVG });

/** The parts of a notebook panel used here, without depending on @jupyterlab/notebook. */
interface INotebookLike extends Widget {
  context?: { path: string };
  sessionContext?: {
    session?: { kernel?: Kernel.IKernelConnection | null } | null;
    ready: Promise<void>;
    statusChanged: ISignal<unknown, Kernel.Status>;
    kernelChanged: ISignal<unknown, unknown>;
  };
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
    setAttachments: value => model.setMetadata(ATTACHMENTS_KEY, value),
    kernelReady: async () => {
      await nb.sessionContext?.ready;
      return nb.sessionContext?.session?.kernel ?? null;
    }
  };
}

const watched = new WeakSet<Widget>();

/**
 * Set a notebook's attached DIDs as variables each time its kernel (re)starts, as
 * rucio-jupyterlab does, so `era5` is there after a restart too.
 */
function watchKernel(widget: Widget): void {
  const nb = widget as INotebookLike;
  const ctx = nb.sessionContext;
  if (!ctx || watched.has(widget)) {
    return;
  }
  watched.add(widget);
  let starting = true; // the kernel of a notebook just opened is starting, or already up
  const inject = (): void => {
    const handle = notebookHandle(widget);
    const kernel = nb.sessionContext?.session?.kernel;
    if (!kernel) {
      return;
    }
    answerResolveDids(kernel, inject);
    const attachments = handle?.getAttachments() ?? [];
    if (attachments.length === 0) {
      return;
    }
    injectAttachments(kernel, attachments).catch(e =>
      console.warn(`DataLake: attached DIDs not set in the kernel of ${handle?.title}: ${errorMessage(e)}`)
    );
  };
  ctx.kernelChanged.connect(() => {
    starting = true;
  });
  ctx.statusChanged.connect((_, status) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'starting') {
      starting = true;
    } else if (status === 'idle' && starting) {
      starting = false;
      inject();
    }
  });
  if (ctx.session?.kernel?.status === 'idle') {
    starting = false;
    inject();
  }
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
        watchKernel(change.newValue!);
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
