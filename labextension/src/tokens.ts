/** Identifiers and types shared by the interTwin lab plugins. */

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
