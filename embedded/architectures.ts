/*
 * Architecture files of the embedded runner: the best architectures a search has seen so far
 * (best-architectures.json + best-architecture.svg, rewritten every epoch), what `derive` picks
 * (best.json + best.svg), and reading any architecture file back for `retrain`: those two, a
 * trial's architecture.json (trial/outputs.ts), or a bare NNI parameter dict.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import { drawGenotype } from '../search-spaces/draw.js';
import type { Genotype } from '../search-spaces/genotype.js';
import { fromParams, fromTokens, specOfParams, toParams, toTokens, type Params, type SpaceSpec } from '../search-spaces/spaces.js';
import type { DatasetName } from '../trial/options.js';
import type { Score } from '../trial/task.js';

export const BEST_SO_FAR_JSON = 'best-architectures.json';
export const BEST_SO_FAR_SVG = 'best-architecture.svg';
export const BEST_JSON = 'best.json';
export const BEST_SVG = 'best.svg';
const ARCHITECTURE_FORMAT = 'nni-enas-architecture/1';

/** An architecture with what the shared weights said of it. */
export interface ScoredArchitecture {
  tokens: number[];
  score: Score;
  /** The epoch (1-based) whose shared weights scored it, for the search's best-so-far list. */
  epoch?: number;
}

/** Which data an architecture was searched on, so retraining uses the same by default. */
export interface DataChoice {
  dataset: DatasetName;
  dataDir: string | null;
}

/** best.json: the derived architecture and how it was chosen. */
export interface ArchitectureFile {
  format: typeof ARCHITECTURE_FORMAT;
  space: SpaceSpec['space'];
  spec: SpaceSpec;
  genotype: Genotype;
  parameters: Params;
  tokens: number[];
  score: Score;
  /** How the score was measured, in words. */
  scoredOn: string;
  data: DataChoice;
  /** Where it came from: the search run directory, its settings, how many samples were scored. */
  origin: Record<string, unknown>;
  /** The runners-up, best first (the chosen one included). */
  ranking: { tokens: number[]; score: Score }[];
}

/** `list` with `entry` added: best first by reward, one entry per architecture (its best score), at most `keep`; ties keep the older first. */
export function rankInto(list: readonly ScoredArchitecture[], entry: ScoredArchitecture, keep: number): ScoredArchitecture[] {
  const byTokens = new Map<string, ScoredArchitecture>();
  for (const candidate of [...list, entry]) {
    const key = JSON.stringify(candidate.tokens);
    const seen = byTokens.get(key);
    if (!seen || candidate.score.reward > seen.score.reward) byTokens.set(key, candidate);
  }
  return [...byTokens.values()].sort((a, b) => b.score.reward - a.score.reward).slice(0, keep);
}

/** best-architectures.json (best first, with genotypes and NNI parameters) and the top one's picture. */
export function writeBestSoFar(dir: string, spec: SpaceSpec, list: readonly ScoredArchitecture[]): void {
  if (!list.length) return;
  const entries = list.map((entry) => {
    const genotype = fromTokens(spec, entry.tokens);
    return { epoch: entry.epoch, score: entry.score, tokens: entry.tokens, parameters: toParams(genotype, spec), genotype };
  });
  writeFileAtomic(
    join(dir, BEST_SO_FAR_JSON),
    `${JSON.stringify({ note: 'best first; scored on the whole validation split with the shared weights of the epoch named', spec, architectures: entries }, null, 2)}\n`,
  );
  writeFileAtomic(join(dir, BEST_SO_FAR_SVG), drawGenotype(entries[0]!.genotype));
}

/** Writes best.json and best.svg for the first of `ranking`; returns the two paths. */
export function writeArchitectureFile(
  dir: string,
  spec: SpaceSpec,
  ranking: readonly ScoredArchitecture[],
  details: { scoredOn: string; data: DataChoice; origin: Record<string, unknown> },
): string[] {
  const best = ranking[0]!;
  const genotype = fromTokens(spec, best.tokens);
  const file: ArchitectureFile = {
    format: ARCHITECTURE_FORMAT,
    space: spec.space,
    spec,
    genotype,
    parameters: toParams(genotype, spec),
    tokens: best.tokens,
    score: best.score,
    scoredOn: details.scoredOn,
    data: details.data,
    origin: details.origin,
    ranking: ranking.map(({ tokens, score }) => ({ tokens, score })),
  };
  const paths = [join(dir, BEST_JSON), join(dir, BEST_SVG)];
  writeFileAtomic(paths[0]!, `${JSON.stringify(file, null, 2)}\n`);
  writeFileAtomic(paths[1]!, drawGenotype(genotype));
  return paths;
}

/** An architecture read from a file, with the data it was searched on when the file says. */
export interface LoadedArchitecture {
  spec: SpaceSpec;
  genotype: Genotype;
  data: DataChoice | null;
}

/**
 * Reads best.json, a trial's architecture.json, or a bare NNI parameter dict. The genotype is
 * checked against its space by a round trip through the controller's tokens.
 */
export function readArchitectureFile(path: string): LoadedArchitecture {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const record = (parsed ?? {}) as Partial<ArchitectureFile> & { parameters?: unknown; architectures?: { parameters?: unknown }[] };
  try {
    if (record.format === ARCHITECTURE_FORMAT) {
      const spec = record.spec!;
      const genotype = fromTokens(spec, toTokens(record.genotype!, spec));
      return { spec, genotype, data: record.data ?? null };
    }
    // A trial's architecture.json holds `parameters`, best-architectures.json a best-first list of
    // them; anything else is taken as the dict itself.
    const params = Array.isArray(record.architectures)
      ? record.architectures[0]?.parameters
      : record.parameters !== undefined && typeof record.parameters === 'object'
        ? record.parameters
        : parsed;
    const spec = specOfParams(params);
    return { spec, genotype: fromParams(spec, params), data: null };
  } catch (error) {
    throw new Error(`${path}: not an architecture of our spaces: ${(error as Error).message}`);
  }
}
