import { ISignal } from '@lumino/signaling';
import { useEffect, useReducer } from 'react';

/**
 * Render the component again on each emission of `signal`; returns the function that does so
 * (for timers). The effect subscribes only after the first render is on screen, and a change
 * emitted in between would be lost (a fast first answer after a reload once left the DataLake
 * panel on "Connecting…"), so the component renders once more right after subscribing.
 */
export function useChanged(signal: ISignal<unknown, unknown>): () => void {
  const [, bump] = useReducer((x: number) => x + 1, 0);
  useEffect(() => {
    const onChanged = (): void => bump();
    signal.connect(onChanged);
    bump();
    return () => {
      signal.disconnect(onChanged);
    };
  }, [signal]);
  return bump;
}
