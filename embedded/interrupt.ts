/*
 * Ctrl-C (SIGINT) and SIGTERM during a long run: the first asks the loop to stop at its next
 * safe point, where it writes a checkpoint and exits; a second one quits at once. The loops are
 * synchronous TensorFlow.js work, so they yield to the event loop after every unit of work
 * (`nextTick`) for the signal handler to run.
 */
import { setImmediate as yieldOnce } from 'node:timers/promises';

export interface StopRequest {
  /** True once a stop was asked for. */
  readonly requested: boolean;
}

/** Installs the handlers until `dispose`; `announce` tells the user what the first signal does. */
export function catchInterrupts(announce: (line: string) => void): StopRequest & { dispose(): void } {
  let requested = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (requested) {
      announce(`${signal} again: quitting without a checkpoint`);
      process.exit(130);
    }
    requested = true;
    announce(`${signal}: stopping at the next safe point to write a checkpoint (press Ctrl-C again to quit at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return requested;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Lets pending events (signals, timers) run between two synchronous steps. */
export async function nextTick(): Promise<void> {
  await yieldOnce();
}
