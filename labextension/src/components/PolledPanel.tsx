import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';

/** What a sidebar panel's model does when the panel is shown and hidden. */
export interface IPolledModel {
  /** A shown panel polls often, a closed one less (or not at all). */
  setVisible(visible: boolean): void;
  /** Begin polling; repeated calls do nothing. */
  start(): void;
}

/**
 * A left-sidebar panel whose model polls the hub service: it starts polling when first
 * shown and tells the model whether anybody is looking.
 */
export abstract class PolledPanel<M extends IPolledModel> extends ReactWidget {
  constructor(
    readonly model: M,
    ...classes: string[]
  ) {
    super();
    this.addClass('itw-panel');
    classes.forEach(c => this.addClass(c));
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setVisible(true);
    this.model.start();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
  }
}
