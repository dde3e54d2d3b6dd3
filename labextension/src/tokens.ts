/** Identifiers, tokens and types shared by the interTwin lab plugins. */
import { Token } from '@lumino/coreutils';

import type { DataLakeModel } from './datalake/model';

export const PLUGIN_ID = '@intertwin/hub:site';
export const API_NAMESPACE = 'intertwin';

/** Where this JupyterLab session runs, as the hub's spawner told it. */
export interface ISiteContext {
  slug: string;
  title: string;
  scratch_rse: string | null;
  scratch_path: string | null;
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

/** GET datalake/config: the DataLake as configured for this session's site. */
export interface IDataLakeConfig {
  /** Rucio site name, e.g. VEGA */
  site: string | null;
  /** the site as users read it */
  site_title?: string | null;
  max_lifetime_days: number;
  auth_type?: string;
  /** the scratch RSE of this site; null when data cannot be made available here */
  rse: string | null;
  /** why make-available is disabled, when the server says so */
  rse_reason?: string | null;
  mount_path: string | null;
  account: string | null;
  default_lifetime_days: number;
  rucio_url: string | null;
}

export type DidType = 'container' | 'dataset' | 'file';
export type TypeFilter = 'all' | 'collection' | 'container' | 'dataset' | 'file';

/** One row of a search result. */
export interface IDid {
  scope: string;
  name: string;
  type: DidType;
  bytes: number | null;
  length?: number | null;
}

export type HereState = 'AVAILABLE' | 'PARTIAL' | 'REPLICATING' | 'NOT_AVAILABLE' | 'STUCK';

export interface IReplica {
  rse: string;
  site: string | null;
  state: string;
  available_length: number | null;
  length: number | null;
}

/** GET datalake/dids/{scope}/{name} */
export interface IDidDetails extends IDid {
  metadata: Record<string, unknown>;
  replicas: IReplica[];
  here: {
    rse: string | null;
    state: HereState;
    rule_id: string | null;
    /** the user's rule at this site, with its locks (progress) */
    rule?: IRule | null;
  } | null;
}

/** A page of a collection's content (or of its local paths). */
export interface IContentPage<T> {
  items: T[];
  offset: number;
  limit: number;
  total: number;
  total_bytes?: number | null;
  /** the whole listing has been read from Rucio (else total is the DID's length) */
  complete?: boolean;
  /** cursor of the next page; null at the end */
  next?: string | null;
}

export interface IContentItem {
  scope: string;
  name: string;
  type?: DidType;
  bytes?: number | null;
  /** only from /paths */
  state?: string;
  path?: string | null;
  pfn?: string | null;
}

export interface IRule {
  id: string;
  did: string;
  rse_expression: string;
  state: string;
  locks: { ok: number; replicating: number; stuck: number };
  progress: number | null;
  expires_at: string | null;
  created_at: string | null;
  error: string | null;
}

/**
 * Whether the site's Rucio lets this account extend / delete its rules (learned by the server;
 * null: not known yet, so the action is offered), and why not.
 */
export interface IRulePermissions {
  extend: boolean | null;
  delete: boolean | null;
  reason: string | null;
}

/** A notebook attachment, in rucio-jupyterlab's exact format. */
export interface IRucioAttachment {
  did: string;
  variableName: string;
  type: 'file' | 'collection';
}

export const ATTACHMENTS_KEY = 'rucio_attachments';
