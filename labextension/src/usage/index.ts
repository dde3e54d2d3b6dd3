import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import type { JobsModel } from '../jobs/model';
import { errorMessage } from '../request';
import { readSettings } from '../settings';
import { IJobsModel, IUsageModel, USAGE_PLUGIN_ID } from '../tokens';
import { UsagePanel } from './components/UsagePanel';
import { IUsageHost, IUsageSettings, UsageModel } from './model';

const USAGE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="13" width="4" height="8" rx="1"/>
    <rect x="10" y="8" width="4" height="13" rx="1"/>
    <rect x="17" y="3" width="4" height="18" rx="1"/>
  </g></svg>`;

export const usageIcon = new LabIcon({ name: 'intertwin:usage', svgstr: USAGE_SVG });

const PANEL_ID = 'intertwin-usage';
/** The Jobs panel's id (labextension/src/jobs/index.ts). */
const JOBS_PANEL_ID = 'intertwin-jobs';

/**
 * The Usage sidebar: this month's usage by site, a chart over time, the most expensive jobs
 * and my VOs' budgets, from the intertwin hub service. Provides its model (`IUsageModel`).
 */
export const usagePlugin: JupyterFrontEndPlugin<UsageModel> = {
  id: USAGE_PLUGIN_ID,
  description: "interTwin Usage: what my sessions and batch cells used, my VOs' budgets",
  autoStart: true,
  provides: IUsageModel,
  optional: [IJobsModel, IRenderMimeRegistry, ILayoutRestorer, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    jobs: JobsModel | null,
    rendermime: IRenderMimeRegistry | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): UsageModel => {
    const host: IUsageHost = {
      user: () => PageConfig.getOption('hubUser') || null,
      openJob: job => {
        // the Jobs panel, its list narrowed to this job (its search matches the job's id)
        jobs?.setFilters({ site: '', state: '', kind: '', search: job.id });
        app.shell.activateById(JOBS_PANEL_ID);
      }
    };
    const model = new UsageModel(host, {}, translator ?? nullTranslator);
    if (settingRegistry) {
      settingRegistry
        .load(USAGE_PLUGIN_ID)
        .then(settings => {
          const first = readSettings<IUsageSettings>(settings);
          model.setSettings(first);
          if (first.unit) {
            model.setUnit(first.unit);
          }
          settings.changed.connect(() => model.setSettings(readSettings<IUsageSettings>(settings)));
        })
        .catch(e => console.warn(`Usage: settings not loaded: ${errorMessage(e)}`));
    }
    const panel = new UsagePanel(model, rendermime);
    panel.id = PANEL_ID;
    panel.title.icon = usageIcon;
    panel.title.caption = model.trans.__("Usage: what I used, my VOs' budgets");
    app.shell.add(panel, 'left', { rank: 630 });
    restorer?.add(panel, PANEL_ID);
    return model;
  }
};
