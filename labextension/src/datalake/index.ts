import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { ATTACHMENTS_KEY, DATALAKE_PLUGIN_ID, IDataLakeModel, IRucioAttachment } from '../tokens';
import { errorMessage } from '../request';
import { readSettings } from '../settings';
import { DataLakePanel } from './components/DataLakePanel';
import { answerResolveDids, injectAttachments } from './injection';
import { DataLakeModel, IDataLakeHost, IDataLakeSettings, INotebookHandle } from './model';

const DATALAKE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <ellipse cx="12" cy="5" rx="8" ry="3"/>
    <path d="M4 7.5v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
    <path d="M4 14v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/>
  </g></svg>`;

export const datalakeIcon = new LabIcon({ name: 'intertwin:datalake', svgstr: DATALAKE_SVG });

function notebookHandle(nb: NotebookPanel | null, untitled: string): INotebookHandle | null {
  const model = nb?.content.model;
  if (!nb || !model || nb.isDisposed) {
    return null;
  }
  return {
    title: nb.title.label || nb.context.path || untitled,
    getAttachments: () => {
      const v = model.getMetadata(ATTACHMENTS_KEY);
      return Array.isArray(v) ? (v as IRucioAttachment[]) : [];
    },
    setAttachments: value => model.setMetadata(ATTACHMENTS_KEY, value),
    kernelReady: async () => {
      await nb.sessionContext.ready;
      return nb.sessionContext.session?.kernel ?? null;
    }
  };
}

/**
 * Set a notebook's attached DIDs as variables each time its kernel (re)starts, as
 * rucio-jupyterlab does, so `era5` is there after a restart too. Called once per notebook, as
 * the notebook tracker adds it.
 */
function watchKernel(nb: NotebookPanel): void {
  const ctx = nb.sessionContext;
  let starting = true; // the kernel of a notebook just opened is starting, or already up
  const inject = (): void => {
    const handle = notebookHandle(nb, nb.context.path);
    const kernel = ctx.session?.kernel;
    if (!kernel) {
      return;
    }
    answerResolveDids(kernel, inject);
    const attachments = handle?.getAttachments() ?? [];
    if (attachments.length === 0) {
      return;
    }
    injectAttachments(kernel, attachments).catch(e =>
      console.warn(
        `DataLake: attached DIDs not set in the kernel of ${handle?.title}: ${errorMessage(e)}`
      )
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

/**
 * The DataLake sidebar: browse Rucio, make data available at this site, attach it. Provides
 * its model (`IDataLakeModel`) for the panels that follow.
 */
export const datalakePlugin: JupyterFrontEndPlugin<DataLakeModel> = {
  id: DATALAKE_PLUGIN_ID,
  description: 'interTwin DataLake: browse Rucio and replicate to the scratch of this site',
  autoStart: true,
  provides: IDataLakeModel,
  optional: [INotebookTracker, ILayoutRestorer, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): DataLakeModel => {
    notebooks?.widgetAdded.connect((_, nb) => watchKernel(nb));
    notebooks?.forEach(watchKernel);
    const host: IDataLakeHost = {
      // the tracker's current notebook is the one last focused, even while the panel has focus
      activeNotebook: () =>
        notebookHandle(notebooks?.currentWidget ?? null, model.trans.__('the notebook')),
      openFolder: async relative => {
        await app.commands.execute('filebrowser:go-to-path', { path: `/${relative}` });
        app.shell.activateById('filebrowser');
      },
      serverRoot: () => PageConfig.getOption('serverRoot') || null
    };
    const model = new DataLakeModel(host, {}, translator ?? nullTranslator);
    if (settingRegistry) {
      settingRegistry
        .load(DATALAKE_PLUGIN_ID)
        .then(settings => {
          model.setSettings(readSettings<IDataLakeSettings>(settings));
          settings.changed.connect(() =>
            model.setSettings(readSettings<IDataLakeSettings>(settings))
          );
        })
        .catch(e => console.warn(`DataLake: settings not loaded: ${errorMessage(e)}`));
    }
    const panel = new DataLakePanel(model);
    panel.id = 'intertwin-datalake';
    panel.title.icon = datalakeIcon;
    panel.title.caption = model.trans.__('DataLake (Rucio)');
    app.shell.add(panel, 'left', { rank: 610 });
    restorer?.add(panel, 'intertwin-datalake');
    return model;
  }
};
