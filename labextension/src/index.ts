import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { SitePanel } from './components/SitePanel';
import { datalakePlugin } from './datalake';
import { jobsPlugin } from './jobs';
import { usagePlugin } from './usage';
import { PLUGIN_ID, TRANSLATION_DOMAIN } from './tokens';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="12" r="3"/><circle cx="18" cy="6" r="3"/><circle cx="18" cy="18" r="3"/>
    <path d="M8.6 10.7l6.8-3.4.9 1.8-6.8 3.4zM8.6 13.3l.9-1.8 6.8 3.4-.9 1.8z"/>
  </g></svg>`;

export const intertwinIcon = new LabIcon({ name: 'intertwin:logo', svgstr: ICON_SVG });

/** The interTwin sidebar: where the session runs (DataLake, Jobs and Usage are plugins of their own). */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'interTwin sidebar: the site this JupyterLab session runs on',
  autoStart: true,
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const panel = new SitePanel(trans);
    panel.id = 'intertwin-site';
    panel.title.icon = intertwinIcon;
    panel.title.caption = trans.__('interTwin: where this session runs');
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'intertwin-site');
  }
};

export default [plugin, datalakePlugin, jobsPlugin, usagePlugin];
