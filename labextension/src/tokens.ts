/** Identifiers, tokens and types shared by the interTwin lab plugins. */
import { Token } from '@lumino/coreutils';

import type { DataLakeModel } from './datalake/model';
import type { components, operations } from './datalake/openapi';
import type { JobsModel } from './jobs/model';
import type { components as JobComponents, operations as JobOperations } from './jobs/openapi';
import type { UsageModel } from './usage/model';

export const PLUGIN_ID = '@intertwin/hub:site';
export const API_NAMESPACE = 'intertwin';
/** The gettext domain of the interTwin panels' sentences (`ITranslator.load`). */
export const TRANSLATION_DOMAIN = 'intertwin_hub';

/** Where this JupyterLab session runs, as the hub's spawner told it. */
export interface ISiteContext {
  slug: string;
  title: string;
  scratch_rse: string | null;
  scratch_path: string | null;
  /** the site's short name (Vega) */
  name?: string;
  /** the model of the site's GPUs (A100), null without GPUs */
  gpu_model?: string | null;
}

/** The JSON error shape of every intertwin API: a code and a sentence for people. */
export interface IApiError {
  error: string;
  message: string;
}

export const DATALAKE_PLUGIN_ID = '@intertwin/hub:datalake';

/**
 * The DataLake model (config, search, opened DID, the user's rules), for the panels that need
 * the DataLake too (Jobs, Usage): `requires: [IDataLakeModel]`.
 */
export const IDataLakeModel = new Token<DataLakeModel>(
  '@intertwin/hub:IDataLakeModel',
  'The DataLake model of the interTwin sidebar: config, search, opened DID, replication rules.'
);

/** The DataLake API's schemas, generated from its openapi.yaml (`jlpm openapi`). */
type Schemas = components['schemas'];
/** The JSON a DataLake operation answers with 200 (operation ids of openapi.yaml). */
export type DataLakeAnswer<Op extends keyof operations> = operations[Op]['responses'] extends {
  200: { content: { 'application/json': infer T } };
}
  ? T
  : never;

/** GET datalake/config: the DataLake as configured for this session's site. */
export type IDataLakeConfig = Schemas['Config'];
export type DidType = Schemas['DidType'];
export type TypeFilter = NonNullable<
  NonNullable<operations['searchDids']['parameters']['query']>['type']
>;
/** One row of a search result. */
export type IDid = Schemas['Did'];
/** GET datalake/dids/{scope}/{name} */
export type IDidDetails = Schemas['DidDetails'];
export type HereState = NonNullable<Schemas['Here']>['state'];
/** A row of a collection's content (its files) or of its local paths at this site. */
export type IContentItem = Schemas['ContentItem'] | Schemas['PathItem'];
export type IRule = Schemas['Rule'];
/**
 * Whether the site's Rucio lets this account extend / delete its rules (learned by the server;
 * null: not known yet, so the action is offered), and why not.
 */
export type IRulePermissions = Schemas['RulePermissions'];

/** A notebook attachment, in rucio-jupyterlab's exact format. */
export interface IRucioAttachment {
  did: string;
  variableName: string;
  type: 'file' | 'collection';
}

export const ATTACHMENTS_KEY = 'rucio_attachments';

export const JOBS_PLUGIN_ID = '@intertwin/hub:jobs';

/**
 * The Jobs model (my notebook servers and batch cells across sites, from the intertwin hub
 * service), for the panels that need it too (Usage): `requires: [IJobsModel]`.
 */
export const IJobsModel = new Token<JobsModel>(
  '@intertwin/hub:IJobsModel',
  'The Jobs model of the interTwin sidebar: my jobs across sites, their logs, cancel.'
);

/** The intertwin service's schemas, generated from its openapi.yaml (`jlpm openapi`). */
type JobSchemas = JobComponents['schemas'];
/** One notebook server or batch cell, in the site's words. */
export type IJob = JobSchemas['Job'];
/** GET jobs: a page, newest first; `next` is the cursor of the following page. */
export type IJobPage = JobSchemas['JobPage'];
export type JobState = IJob['state'];
export type JobKind = IJob['kind'];
/** GET sites: a site's node and GPUs as the service sees them now. */
export type ISiteStatus = JobSchemas['Site'];

export const USAGE_PLUGIN_ID = '@intertwin/hub:usage';

/**
 * The Usage model (this month's usage by site, the chart's series, the most expensive jobs, my
 * VOs' budgets, from the intertwin hub service), for the panels that need it too.
 */
export const IUsageModel = new Token<UsageModel>(
  '@intertwin/hub:IUsageModel',
  'The Usage model of the interTwin sidebar: my usage by site and over time, my VOs budgets.'
);

/** The service's answers, generated from its openapi.yaml (`jlpm openapi`, operation ids). */
export type ServiceAnswer<Op extends keyof JobOperations> = JobOperations[Op]['responses'] extends {
  200: { content: { 'application/json': infer T } };
}
  ? T
  : never;
/** GET usage: totals and per-site figures of a period (default: this month). */
export type IUsageSummary = ServiceAnswer<'getUsage'>;
/** Allocated CPU-core, memory GB, wall and GPU hours (by GPU model), and the jobs counted. */
export type IUsageTotals = JobSchemas['UsageTotals'];
export type IUsageSite = IUsageSummary['sites'][number];
/** GET usage/series: one point per bucket (day, week, month) and site. */
export type IUsageSeries = ServiceAnswer<'getUsageSeries'>;
export type UsageUnit = IUsageSeries['unit'];
export type IUsagePoint = IUsageSeries['points'][number];
/** GET usage/jobs: the most expensive jobs of the period. */
export type IUsageJobs = ServiceAnswer<'getUsageJobs'>;
export type IUsageJob = IUsageJobs['jobs'][number];
/** GET budgets: a VO's allowance at a site, this period's use of it, its state and sentence. */
export type IBudget = JobSchemas['BudgetUse'];
