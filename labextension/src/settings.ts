import { ISettingRegistry } from '@jupyterlab/settingregistry';

/** A plugin's settings as the registry holds them: the user's values over the schema's defaults. */
export function readSettings<T>(settings: ISettingRegistry.ISettings): Partial<T> {
  return settings.composite as unknown as Partial<T>;
}
