/*
 * Deriving the architecture from a trained search (ENAS.md §4): sample architectures from the
 * controller's policy, score each with the shared weights, keep the best. The paper scores each
 * sample on a single validation minibatch; here every sample is scored on the same data, the
 * whole validation split by default (or its first k batches), which ranks them far less noisily.
 */
import { join } from 'node:path';
import { fromTokens } from '../search-spaces/spaces.js';
import { architectureLines } from '../trial/outputs.js';
import { trialOptionsOf, type SearchSettings } from './settings.js';
import { writeArchitectureFile, type ScoredArchitecture } from './architectures.js';
import { nextTick, type StopRequest } from './interrupt.js';
import { buildSearch, restoreSearch, type SearchParts } from './search-setup.js';

export interface DeriveOptions {
  samples: number;
  /** Validation batches per sample, the same ones for all; null for the whole validation split. */
  validBatches: number | null;
}

export interface DeriveResult {
  /** Distinct sampled architectures, best first. */
  ranking: ScoredArchitecture[];
  sampled: number;
  /** How the scores were measured, in words (kept in best.json). */
  scoredOn: string;
}

/**
 * Samples `options.samples` architectures from the controller and scores the distinct ones.
 * Returns null if stopped on request. `onScored` reports progress.
 */
export async function deriveArchitectures(
  parts: SearchParts,
  settings: SearchSettings,
  options: DeriveOptions,
  stop: StopRequest,
  onScored: (done: number, total: number) => void = () => {},
): Promise<DeriveResult | null> {
  const { task, model, controller } = parts;
  const distinct = new Map<string, number[]>();
  for (let k = 0; k < options.samples; k++) {
    const tokens = controller.propose();
    distinct.set(JSON.stringify(tokens), tokens);
  }
  const ranking: ScoredArchitecture[] = [];
  for (const tokens of distinct.values()) {
    if (stop.requested) return null;
    const genotype = fromTokens(settings.spec, tokens);
    const score = options.validBatches === null ? task.validate(model, genotype) : task.score(model, genotype, 0, options.validBatches);
    ranking.push({ tokens, score });
    onScored(ranking.length, distinct.size);
    await nextTick();
  }
  ranking.sort((a, b) => b.score.reward - a.score.reward);
  const batches = ranking[0]!.score.batches;
  const what =
    options.validBatches === null ? `the whole validation split (${batches} batches)` : `the first ${batches} validation batch${batches === 1 ? '' : 'es'}`;
  return {
    ranking,
    sampled: options.samples,
    scoredOn:
      `${ranking.length} distinct of ${options.samples} architectures sampled from the trained controller, each scored on ${what} ` +
      `with the shared weights (the paper scores each on one validation minibatch, ENAS.md §4)`,
  };
}

/** Writes best.json and best.svg into the run directory; returns their paths. */
export function writeDerived(runDir: string, settings: SearchSettings, parts: SearchParts, result: DeriveResult, epochs: number): string[] {
  const trial = trialOptionsOf(settings);
  return writeArchitectureFile(runDir, settings.spec, result.ranking, {
    scoredOn: result.scoredOn,
    data: { dataset: parts.task.dataset, dataDir: trial.dataDir ?? null },
    origin: {
      run: runDir,
      experimentName: settings.experimentName,
      preset: settings.preset,
      epochs,
      trialArgs: settings.trialArgs,
      samples: result.sampled,
      distinct: result.ranking.length,
    },
  });
}

/** The top of a derive for the terminal: the ranking, then the chosen architecture line by line. */
export function derivedLines(settings: SearchSettings, parts: SearchParts, result: DeriveResult, top = 5): string[] {
  const image = parts.task.kind === 'image';
  const describe = (entry: ScoredArchitecture) =>
    image
      ? `accuracy ${entry.score.accuracy!.toFixed(4)} (loss ${entry.score.loss.toFixed(4)})`
      : `perplexity ${entry.score.perplexity!.toFixed(2)} (reward 80/ppl ${entry.score.reward.toFixed(4)})`;
  return [
    `derived: ${result.scoredOn}`,
    ...result.ranking.slice(0, top).map((entry, i) => `  ${i + 1}. ${describe(entry)}  tokens ${entry.tokens.join(' ')}`),
    `best architecture, shared-weight validation ${describe(result.ranking[0]!)}:`,
    ...architectureLines(fromTokens(settings.spec, result.ranking[0]!.tokens)).map((line) => `  ${line}`),
  ];
}

/** `nni-enas derive`: rebuilds a finished (or stopped) search from its directory and derives from its last checkpoint. */
export async function deriveFromRun(
  runDir: string,
  settings: SearchSettings,
  options: DeriveOptions,
  stop: StopRequest,
  onScored?: (done: number, total: number) => void,
): Promise<{ result: DeriveResult; parts: SearchParts; files: string[]; epochs: number } | null> {
  const parts = buildSearch(settings);
  try {
    const { state } = restoreSearch(runDir, parts);
    if (state.epoch === 0) throw new Error(`${join(runDir, 'checkpoint')}: the search has not finished an epoch yet, so there is no trained controller to derive from`);
    const result = await deriveArchitectures(parts, settings, options, stop, onScored);
    if (!result) return null;
    return { result, parts, files: writeDerived(runDir, settings, parts, result, state.epoch), epochs: state.epoch };
  } finally {
    parts.model.dispose();
    parts.controller.dispose();
  }
}
