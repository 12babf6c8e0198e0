/*
 * What the NNI tuner (tuner/main.ts and the protocol code) asks of a search strategy: the ENAS
 * controller (tuner/controller.ts) or uniform random sampling. Strategies speak in token
 * sequences (search-spaces/spaces.ts `toTokens`/`fromTokens`) and know nothing of NNI.
 */
import type { SpaceSpec } from '../search-spaces/spaces.js';

export interface SearchStrategy {
  readonly spec: SpaceSpec;
  /** Samples the next architecture to try, as the controller's token sequence. */
  propose(): number[];
  /**
   * Takes the reward of an architecture (one it proposed, or a foreign one such as a web-UI
   * "add trial"). Returns true when this reward completed an update of the policy.
   */
  observe(tokens: readonly number[], reward: number): boolean;
  /** The whole state as JSON-able data (parameters, optimiser, baseline, counters, RNG). */
  save(): unknown;
  /** Restores what `save` returned; throws a clear error if it does not fit this strategy. */
  load(state: unknown): void;
  dispose(): void;
}
