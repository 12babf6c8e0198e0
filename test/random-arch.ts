/*
 * A seeded, uniformly random architecture of any space, for tests.
 */
import { Random } from '../common/random.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { decisions, fromTokens, type SpaceSpec } from '../search-spaces/spaces.js';

export function randomArc<G extends Genotype>(spec: SpaceSpec, seed: number): G {
  const rng = new Random(seed);
  return fromTokens(spec, decisions(spec).map((d) => rng.int(d.choices.length))) as G;
}
