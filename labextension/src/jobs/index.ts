import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { ApiError, errorMessage, requestAPI } from '../request';
import { readSettings } from '../settings';
import { IJobsModel, ISiteContext, JOBS_PLUGIN_ID } from '../tokens';
import { JobsPanel } from './components/JobsPanel';
import { SessionStatus } from './components/SessionStatus';
import { IJobsHost, IJobsSettings, JobsModel } from './model';

const JOBS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="4" width="18" height="4" rx="1"/>
    <rect x="3" y="10" width="13" height="4" rx="1"/>
    <rect x="3" y="16" width="8" height="4" rx="1"/>
  </g></svg>`;

export const jobsIcon = new LabIcon({ name: 'intertwin:jobs', svgstr: JOBS_SVG });

const PANEL_ID = 'intertwin-jobs';

/** Open a notebook and make the cell with this id the active one, scrolled into view. */
async function openAtCell(
  app: JupyterFrontEnd,
  docManager: IDocumentManager | null,
  path: string,
  cellId: string | null,
  trans: JobsModel['trans']
): Promise<void> {
  const widget =
    docManager?.openOrReveal(path) ??
    ((await app.commands.execute('docmanager:open', { path })) as unknown);
  if (!(widget instanceof NotebookPanel)) {
    return;
  }
  await widget.context.ready;
  await widget.revealed;
  app.shell.activateById(widget.id);
  if (!cellId) {
    return;
  }
  const nb = widget.content;
  const index = nb.widgets.findIndex(c => c.model.id === cellId);
  if (index < 0) {
    Notification.warning(
      trans.__('%1 has no cell %2 any more (it was edited since).', path, cellId),
      { autoClose: 8000 }
    );
    return;
  }
  nb.activeCellIndex = index;
  await nb.scrollToItem(index, 'center');
}

/**
 * The Jobs sidebar: my notebook servers and batch cells across sites, from the intertwin hub
 * service; a status-bar item saying where this session runs. Provides its model (`IJobsModel`).
 */
export const jobsPlugin: JupyterFrontEndPlugin<JobsModel> = {
  id: JOBS_PLUGIN_ID,
  description: 'interTwin Jobs: my notebook servers and batch cells across sites',
  autoStart: true,
  provides: IJobsModel,
  optional: [IDocumentManager, IStatusBar, ILayoutRestorer, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): JobsModel => {
    const showPanel = (): void => {
      app.shell.activateById(PANEL_ID);
    };
    const host: IJobsHost = {
      session: () => ({
        user: PageConfig.getOption('hubUser') || null,
        serverName: PageConfig.getOption('hubServerName') || ''
      }),
      site: async () => {
        try {
          return await requestAPI<ISiteContext>('site');
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) {
            return null; // not started by the interTwin hub
          }
          throw e;
        }
      },
      confirm: async (title, body, accept, reject) => {
        const result = await showDialog({
          title,
          body,
          buttons: [Dialog.cancelButton({ label: reject }), Dialog.warnButton({ label: accept })]
        });
        return result.button.accept;
      },
      notify: (message, type, action) => {
        Notification.emit(message, type, {
          autoClose: type === 'error' ? false : 15_000,
          actions: action ? [{ label: action.label, callback: () => action.callback() }] : []
        });
      },
      openCell: (path, cellId) => openAtCell(app, docManager, path, cellId, model.trans),
      showPanel
    };
    const model = new JobsModel(host, {}, translator ?? nullTranslator);
    if (settingRegistry) {
      settingRegistry
        .load(JOBS_PLUGIN_ID)
        .then(settings => {
          model.setSettings(readSettings<IJobsSettings>(settings));
          settings.changed.connect(() => model.setSettings(readSettings<IJobsSettings>(settings)));
        })
        .catch(e => console.warn(`Jobs: settings not loaded: ${errorMessage(e)}`));
    }
    const panel = new JobsPanel(model);
    panel.id = PANEL_ID;
    panel.title.icon = jobsIcon;
    panel.title.caption = model.trans.__('Jobs: my notebook servers and batch cells');
    app.shell.add(panel, 'left', { rank: 620 });
    restorer?.add(panel, PANEL_ID);
    if (statusBar) {
      const item = new SessionStatus(model, showPanel);
      statusBar.registerStatusItem('@intertwin/hub:session', {
        item,
        align: 'left',
        rank: 100,
        isActive: () => true
      });
    }
    // the status bar and the notifications need the list even while the panel is closed
    void app.restored.then(() => model.start());
    return model;
  }
};
