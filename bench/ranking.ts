/*
 * `nni-enas bench ranking`: does a search's supernet rank architectures the way training them
 * alone does? N architectures drawn uniformly at random (a fixed seed: the same set for every run
 * of the same space), each scored with the run's shared weights (last checkpoint) on the whole
 * validation split, and each trained alone with a short fixed budget by the retrain code
 * (embedded/retrain.ts), scored on held-out test data. Kendall τ-b, Spearman ρ and the top-5
 * overlap of the two rankings go to ranking.json and a scatter plot, ranking.svg.
 *
 * The stand-alone networks get the sizes of the run's preset (SEARCH_PRESETS), not the run's own
 * flags, so runs that differ in supernet options share one ground truth, and a stand-alone result
 * (space, architecture, budget, data, seed) is cached on disk: a file per key, written atomically.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { lineChart } from '../common/chart.js';
import { writeFileAtomic } from '../common/files.js';
import { Random } from '../common/random.js';
import { fromTokens, spaceSize, toParams, toTokens, type Params } from '../search-spaces/spaces.js';
import { TEXT_REWARD_CONSTANT, type Score } from '../trial/task.js';
import type { DataChoice } from '../embedded/architectures.js';
import { CHECKPOINT_DIR, hasCheckpoint } from '../embedded/checkpoint.js';
import { HISTORY_FILE, readHistory, type EpochRecord } from '../embedded/history.js';
import { nextTick, type StopRequest } from '../embedded/interrupt.js';
import { SEARCH_PRESETS, type RetrainRecipe, type TrainableSpace } from '../embedded/presets.js';
import { count, EtaEstimator, formatDuration, ProgressLine, type ProgressView } from '../embedded/progress.js';
import { randomArchitecture, runRetrain, type RetrainSettings, type TestScore } from '../embedded/retrain.js';
import { buildSearch, restoreSearch } from '../embedded/search-setup.js';
import { readSettings, trialOptionsOf, type SearchSettings } from '../embedded/settings.js';
import { kendallNullSd, kendallTauB, spearmanRho, topOverlap, type TopOverlap } from './rank-stats.js';

export const RANKING_JSON = 'ranking.json';
export const RANKING_SVG = 'ranking.svg';
const RANKING_FORMAT = 'nni-enas-ranking/1';
const STANDALONE_FORMAT = 'nni-enas-standalone/1';

/** Fewer architectures leave τ and ρ at ±1 or undefined. */
export const MIN_ARCHS = 3;
/** The top-k overlap's k, or ⌊N/2⌋ when N < 10 (a top-5 of 5 architectures would overlap by definition). */
const TOP_K = 5;

/**
 * Stand-alone training epochs (one cosine period, the retrain code's schedule). Measured on this
 * 2-core machine under load (docs/embedded.md, "Ranking benchmark"), CPU time of one thread at the
 * `default` preset's sizes: a micro network (C=8, 3+2 cells, 3,000 images) trains 2 epochs in
 * 29–60 s (mean 41 s), a macro one (C=12) in 55–73 s, the text network (H=64, 40,000 tokens) 4 epochs in 45 s.
 */
export const STANDALONE_EPOCHS: Record<TrainableSpace, number> = { micro: 2, macro: 2, rnn: 4 };

export interface RankingOptions {
  /** The search's run directory (absolute). */
  run: string;
  archs: number;
  seed: number;
  /** Stand-alone results, a file per key. */
  cache: string;
  /** Where ranking.json and ranking.svg go. */
  out: string;
  /** The TensorFlow.js backend in use, kept with each stand-alone result. */
  backend: string;
}

export interface RankingIo {
  print(line: string): void;
  progress: ProgressLine;
  stop: StopRequest;
}

/** What a stand-alone training measured; the cached part. */
export interface StandAloneScore {
  /** Higher is better: accuracy, or 80/perplexity for text (the search's reward); 0 if training diverged. */
  reward: number;
  /** Null if training diverged. */
  test: TestScore | null;
  /** Why training failed (a non-finite loss), or null: a network that cannot be trained with the budget ranks last. */
  diverged: string | null;
  /** Trainable parameters of the network; null if training diverged. */
  parameters: number | null;
  /** Wall seconds of the training and test. */
  seconds: number;
  /** CPU seconds of this process meanwhile (the training runs in this thread): what the budget costs on an idle core. */
  cpuSeconds: number;
  backend: string;
}

/** What a stand-alone result depends on: its cache key. */
export interface StandAloneKey {
  format: typeof STANDALONE_FORMAT;
  spec: SearchSettings['spec'];
  tokens: number[];
  recipe: RetrainRecipe;
  data: DataChoice;
  seed: number;
}

export interface RankedArchitecture {
  /** 1-based position in the sample (the labels of ranking.svg). */
  index: number;
  /** `nni-enas retrain --random-arch <archSeed>` retrains this very architecture. */
  archSeed: number;
  tokens: number[];
  parameters: Params;
  shared: Score;
  standAlone: StandAloneScore & { cached: boolean };
}

export interface RankingStatistics {
  n: number;
  /** Null when one of the rankings is constant. */
  kendallTauB: number | null;
  /** τ's spread over unrelated rankings of n untied items. */
  kendallNullSd: number;
  spearmanRho: number | null;
  top: TopOverlap;
}

export interface RankingResult {
  format: typeof RANKING_FORMAT;
  run: string;
  space: TrainableSpace;
  spec: SearchSettings['spec'];
  search: {
    experimentName: string;
    preset: SearchSettings['preset'];
    trialArgs: string[];
    schedule: SearchSettings['schedule'];
    /** Epochs and child steps the checkpoint's shared weights had trained. */
    epochs: number;
    globalStep: number;
    /** The checkpoint's last epoch in history.jsonl: mean training accuracy (loss) of its child steps, the report's best on the whole validation split. */
    lastEpoch: Pick<EpochRecord, 'epoch' | 'trainAccuracy' | 'trainLoss' | 'valid'> | null;
  };
  sample: { archs: number; seed: number; how: string };
  shared: { scoredOn: string; metric: string };
  standAlone: { recipe: RetrainRecipe; seed: number; data: DataChoice; trainedOn: string; scoredOn: string; metric: string; cache: string };
  statistics: RankingStatistics;
  architectures: RankedArchitecture[];
  seconds: { shared: number; standAlone: number };
}

/** Every check on the input before anything runs or is written; each failure is one line naming the flag or path. */
export function checkRankingInput(options: Pick<RankingOptions, 'run' | 'archs' | 'seed' | 'cache' | 'out'>): SearchSettings {
  if (!(Number.isInteger(options.archs) && options.archs >= MIN_ARCHS))
    throw new Error(`--archs must be an integer >= ${MIN_ARCHS} (fewer leave Kendall's τ and Spearman's ρ at ±1 or undefined), got ${options.archs}`);
  if (!(Number.isInteger(options.seed) && options.seed >= 0 && options.seed < 2 ** 32))
    throw new Error(`--seed must be an integer from 0 to 2^32 − 1, got ${options.seed}`);
  for (const [flag, path] of [
    ['--cache', options.cache],
    ['--out', options.out],
  ] as const)
    if (existsSync(path) && !statSync(path).isDirectory()) throw new Error(`${flag} ${path}: not a directory`);
  if (!existsSync(options.run)) throw new Error(`--run ${options.run}: no such directory`);
  const settings = readSettings(options.run);
  const checkpoint = join(options.run, CHECKPOINT_DIR);
  if (!hasCheckpoint(checkpoint)) throw new Error(`${checkpoint}: no checkpoint, so no shared weights to score (has the search started?)`);
  const size = spaceSize(settings.spec);
  if (options.archs > size) throw new Error(`--archs ${options.archs}: the ${settings.spec.space} space has only ${size} architectures`);
  return settings;
}

/**
 * `count` distinct architectures of the space, each drawn uniformly by randomArchitecture with a
 * seed from a stream seeded by `seed`: the same list for every run of the same space and seed.
 */
export function sampleArchitectures(spec: SearchSettings['spec'], archs: number, seed: number): { archSeed: number; tokens: number[] }[] {
  const seeds = new Random(seed);
  const seen = new Set<string>();
  const sample: { archSeed: number; tokens: number[] }[] = [];
  for (let draws = 0; sample.length < archs; draws++) {
    if (draws >= 100 * archs) throw new Error(`--archs ${archs}: found only ${sample.length} distinct architectures in ${draws} draws of the ${spec.space} space`);
    const archSeed = seeds.nextUint32();
    const tokens = toTokens(randomArchitecture(spec, archSeed), spec);
    const key = tokens.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    sample.push({ archSeed, tokens });
  }
  return sample;
}

/**
 * The stand-alone budget: the retrain code's fixed network at the sizes of the run's preset (its
 * supernet's channels and cells and its training images, whatever flags the run overrode), trained
 * for STANDALONE_EPOCHS without the regularisers a short run does not need (aux head, drop-path, cutout).
 */
export function standAloneRecipe(settings: SearchSettings): RetrainRecipe {
  const space = settings.spec.space;
  const sizes = SEARCH_PRESETS[settings.preset][space].trial;
  const text = space === 'rnn';
  const batchSize = sizes.batchSize ?? (text ? 32 : 64);
  return {
    epochs: STANDALONE_EPOCHS[space],
    batchSize,
    evalBatchSize: sizes.evalBatchSize ?? (text ? batchSize : 100),
    ...(sizes.subset !== undefined && { subset: sizes.subset }),
    ...(!text && sizes.channels !== undefined && { channels: sizes.channels }),
    ...(space === 'micro' && sizes.layers !== undefined && { cells: sizes.layers }),
    ...(text && sizes.hidden !== undefined && { hidden: sizes.hidden }),
    auxHead: false,
    dropPathKeep: 1,
    cutout: 0,
  };
}

/** JSON with object keys sorted, so equal keys hash alike whatever order they were built in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** The cache file of a key: <space>-<hash>.json. */
export function cachePath(cache: string, key: StandAloneKey): string {
  const hash = createHash('sha256').update(canonicalJson(key)).digest('hex').slice(0, 20);
  return join(cache, `${key.spec.space}-${hash}.json`);
}

function readCached(path: string, key: StandAloneKey): StandAloneScore | null {
  if (!existsSync(path)) return null;
  let entry: { key?: unknown; result?: StandAloneScore };
  try {
    entry = JSON.parse(readFileSync(path, 'utf8')) as typeof entry;
  } catch (error) {
    throw new Error(`${path}: unreadable stand-alone result (${(error as Error).message}); delete it to retrain`);
  }
  // Keys are compared as stored, not only by their hash.
  if (!isDeepStrictEqual(JSON.parse(canonicalJson(entry.key)), JSON.parse(canonicalJson(key))) || !entry.result)
    throw new Error(`${path}: holds another stand-alone result than its name says; delete it to retrain`);
  return entry.result;
}

/** A progress line that hands the retraining's views to the benchmark's own line instead of drawing them. */
class NestedProgress extends ProgressLine {
  constructor(private readonly show: (view: ProgressView) => void) {
    super({ write: () => true });
  }
  override update(view: ProgressView): void {
    this.show(view);
  }
  override close(): void {}
}

/** Trains one architecture alone in a scratch directory; null if stopped. */
async function trainAlone(
  settings: RetrainSettings,
  io: RankingIo,
  backend: string,
  show: (view: ProgressView) => void,
): Promise<StandAloneScore | null> {
  const dir = mkdtempSync(join(tmpdir(), 'nni-enas-ranking-'));
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const seconds = () => (performance.now() - started) / 1000;
  const times = () => {
    const cpu = process.cpuUsage(cpuStarted);
    return { seconds: seconds(), cpuSeconds: (cpu.user + cpu.system) / 1e6, backend };
  };
  try {
    const outcome = await runRetrain(dir, settings, false, { print: () => {}, progress: new NestedProgress(show), stop: io.stop });
    if (!outcome.finished) return null;
    const test = outcome.test!;
    const reward = test.accuracy ?? TEXT_REWARD_CONSTANT / test.perplexity!;
    if (!Number.isFinite(reward) || !Number.isFinite(test.loss))
      return { reward: 0, test: null, diverged: `test loss ${test.loss}`, parameters: outcome.parameters, ...times() };
    return { reward, test, diverged: null, parameters: outcome.parameters, ...times() };
  } catch (error) {
    // runRetrain's own words for a non-finite training loss: the architecture's result, not a failure of the benchmark.
    const message = (error as Error).message;
    if (message.startsWith('training diverged'))
      return { reward: 0, test: null, diverged: message.split(';')[0]!, parameters: null, ...times() };
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const describeSubset = (recipe: RetrainRecipe, text: boolean, split: string): string =>
  recipe.subset === undefined ? `the whole ${split}` : `the first ${recipe.subset.toLocaleString('en-US')} ${text ? 'tokens' : 'images per class'} of the ${split}`;

/** The benchmark; null if stopped (stand-alone results finished so far stay in the cache). */
export async function runRanking(options: RankingOptions, io: RankingIo): Promise<RankingResult | null> {
  const settings = checkRankingInput(options);
  const { spec } = settings;
  const text = spec.space === 'rnn';
  const sample = sampleArchitectures(spec, options.archs, options.seed);

  // Shared-weight scores, all first: one supernet in memory, then freed for the stand-alone networks.
  const parts = buildSearch(settings);
  const eta = new EtaEstimator<'score' | 'train'>();
  const recipe = standAloneRecipe(settings);
  const data: DataChoice = { dataset: parts.task.dataset, dataDir: trialOptionsOf(settings).dataDir ?? null };
  const keyOf = (tokens: number[]): StandAloneKey => ({ format: STANDALONE_FORMAT, spec, tokens, recipe, data, seed: options.seed });
  const sharedStarted = performance.now();
  const shared: Score[] = [];
  let checkpointState: { epochs: number; globalStep: number };
  let cached: (StandAloneScore | null)[];
  try {
    const { state } = restoreSearch(options.run, parts);
    cached = sample.map(({ tokens }) => readCached(cachePath(options.cache, keyOf(tokens)), keyOf(tokens)));
    checkpointState = { epochs: state.epoch, globalStep: state.globalStep };
    for (const { tokens } of sample) {
      if (io.stop.requested) return null;
      const started = performance.now();
      shared.push(parts.task.validate(parts.model, fromTokens(spec, tokens)));
      eta.record('score', (performance.now() - started) / 1000);
      // The stand-alone trainings are not timed yet: while some are to come, the ETA is a lower bound.
      const left = eta.eta({ score: sample.length - shared.length, train: cached.filter((c) => c === null).length });
      io.progress.update({
        label: `scoring with the shared weights ${shared.length}/${sample.length}`,
        fraction: shared.length / sample.length,
        etaSeconds: left?.seconds ?? null,
        etaPartial: left?.partial ?? false,
        stats: '',
      });
      await nextTick();
    }
  } finally {
    parts.model.dispose();
    parts.controller.dispose();
  }
  const sharedSeconds = (performance.now() - sharedStarted) / 1000;
  const toTrain = cached.filter((c) => c === null).length;
  io.print(
    `shared weights scored ${count(sample.length, 'architecture')} in ${formatDuration(sharedSeconds)}; ` +
      `stand-alone: ${sample.length - toTrain} cached, ${toTrain} to train (${count(recipe.epochs, 'epoch')} each)`,
  );

  const standAlone: (StandAloneScore & { cached: boolean })[] = [];
  const standAloneStarted = performance.now();
  let trained = 0;
  for (const [i, { archSeed, tokens }] of sample.entries()) {
    const hit = cached[i];
    if (hit) {
      standAlone.push({ ...hit, cached: true });
      continue;
    }
    const key = keyOf(tokens);
    const retrainSettings: RetrainSettings = {
      format: 'nni-enas-retrain/1',
      arch: `ranking sample of ${options.run} (--random-arch ${archSeed})`,
      spec,
      genotype: fromTokens(spec, tokens),
      randomSeed: archSeed,
      data,
      preset: settings.preset,
      recipe,
      seed: options.seed,
      backend: null,
    };
    const archStarted = performance.now();
    const show = (view: ProgressView) => {
      const perArch = eta.eta({ train: 1 })?.seconds ?? (view.fraction > 0 ? (performance.now() - archStarted) / 1000 / view.fraction : null);
      const after = toTrain - trained - 1;
      io.progress.update({
        label: `stand-alone ${trained + 1}/${toTrain} (architecture ${i + 1}) ${view.label}`,
        fraction: (trained + view.fraction) / toTrain,
        etaSeconds: view.etaSeconds === null || perArch === null ? null : view.etaSeconds + after * perArch,
        stats: view.stats,
      });
    };
    let score: StandAloneScore | null;
    try {
      score = await trainAlone(retrainSettings, io, options.backend, show);
    } catch (error) {
      throw new Error(`stand-alone training of architecture ${i + 1} (--random-arch ${archSeed}): ${(error as Error).message}`);
    }
    if (!score) return null;
    writeFileAtomic(cachePath(options.cache, key), `${JSON.stringify({ key, result: score }, null, 2)}\n`);
    eta.record('train', score.seconds);
    trained++;
    standAlone.push({ ...score, cached: false });
    const value = score.test === null ? score.diverged : text ? `test perplexity ${score.test.perplexity!.toFixed(1)}` : `test accuracy ${score.test.accuracy!.toFixed(4)}`;
    io.print(`  architecture ${i + 1}: ${value}, ${formatDuration(score.seconds)} (${formatDuration(score.cpuSeconds)} of CPU)`);
  }
  io.progress.close();

  // A non-finite shared score (a diverged supernet) ranks last, as a diverged stand-alone training does.
  const sharedValues = shared.map((s) => (Number.isFinite(s.reward) ? s.reward : 0));
  const aloneValues = standAlone.map((s) => s.reward);
  const n = sample.length;
  const statistics: RankingStatistics = {
    n,
    kendallTauB: kendallTauB(sharedValues, aloneValues),
    kendallNullSd: kendallNullSd(n),
    spearmanRho: spearmanRho(sharedValues, aloneValues),
    top: topOverlap(sharedValues, aloneValues, n >= 2 * TOP_K ? TOP_K : Math.floor(n / 2)),
  };
  const history = existsSync(join(options.run, HISTORY_FILE)) ? readHistory(join(options.run, HISTORY_FILE)) : [];
  const lastEpoch = history.filter((r): r is EpochRecord => r.type === 'epoch' && r.epoch <= checkpointState.epochs).at(-1);
  const result: RankingResult = {
    format: RANKING_FORMAT,
    run: options.run,
    space: spec.space,
    spec,
    search: {
      experimentName: settings.experimentName,
      preset: settings.preset,
      trialArgs: settings.trialArgs,
      schedule: settings.schedule,
      ...checkpointState,
      lastEpoch: lastEpoch ? { epoch: lastEpoch.epoch, trainAccuracy: lastEpoch.trainAccuracy, trainLoss: lastEpoch.trainLoss, valid: lastEpoch.valid } : null,
    },
    sample: {
      archs: n,
      seed: options.seed,
      how: 'distinct architectures, each drawn uniformly by randomArchitecture(spec, archSeed) with archSeeds from a stream seeded by --seed',
    },
    shared: {
      scoredOn: `the whole validation split of the search (${shared[0]!.batches} batches), with the shared weights of the last checkpoint`,
      metric: text ? 'reward 80/perplexity (higher is better)' : 'accuracy',
    },
    standAlone: {
      recipe,
      seed: options.seed,
      data,
      trainedOn: describeSubset(recipe, text, text ? 'training split' : 'training set'),
      scoredOn: describeSubset(recipe, text, 'test split'),
      metric: text ? 'reward 80/test perplexity (higher is better)' : 'test accuracy',
      cache: options.cache,
    },
    statistics,
    architectures: sample.map(({ archSeed, tokens }, i) => ({
      index: i + 1,
      archSeed,
      tokens,
      parameters: toParams(fromTokens(spec, tokens), spec),
      shared: shared[i]!,
      standAlone: standAlone[i]!,
    })),
    seconds: { shared: sharedSeconds, standAlone: (performance.now() - standAloneStarted) / 1000 },
  };
  writeFileAtomic(join(options.out, RANKING_JSON), `${JSON.stringify(result, null, 2)}\n`);
  writeFileAtomic(join(options.out, RANKING_SVG), rankingChart(result));
  return result;
}

const fixed = (value: number | null, digits = 3): string => (value === null ? 'undefined' : value.toFixed(digits));

/** The statistics in one line. */
export function statisticsLine(statistics: RankingStatistics): string {
  const { top } = statistics;
  return (
    `Kendall τ-b ${fixed(statistics.kendallTauB)} (unrelated rankings: 0 ± ${statistics.kendallNullSd.toFixed(2)}), ` +
    `Spearman ρ ${fixed(statistics.spearmanRho)}, top-${top.k} overlap ${top.overlap} of ${top.k} (chance ${top.chance.toFixed(2)})`
  );
}

/** The terminal's summary: one row per architecture, then the statistics. */
export function rankingLines(result: RankingResult): string[] {
  const text = result.space === 'rnn';
  const sharedOf = (s: Score) => (text ? s.perplexity!.toFixed(1) : s.accuracy!.toFixed(4));
  const aloneOf = (s: StandAloneScore) => (s.test === null ? 'diverged' : text ? s.test.perplexity!.toFixed(1) : s.test.accuracy!.toFixed(4));
  const rankOf = (values: number[]) => values.map((v) => 1 + values.filter((w) => w > v).length);
  const sharedRank = rankOf(result.architectures.map((a) => a.shared.reward));
  const aloneRank = rankOf(result.architectures.map((a) => a.standAlone.reward));
  const header = text ? ['#', 'shared ppl', 'rank', 'alone ppl', 'rank', 'params', ''] : ['#', 'shared acc', 'rank', 'alone acc', 'rank', 'params', ''];
  const rows = result.architectures.map((a, i) => [
    String(a.index),
    sharedOf(a.shared),
    String(sharedRank[i]),
    aloneOf(a.standAlone),
    String(aloneRank[i]),
    a.standAlone.parameters === null ? '' : `${(a.standAlone.parameters / 1000).toFixed(0)}k`,
    a.standAlone.cached ? 'cached' : '',
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const format = (cells: string[]) => cells.map((cell, c) => cell.padStart(widths[c]!)).join('  ').trimEnd();
  const { search, standAlone } = result;
  const last = search.lastEpoch;
  return [
    `supernet: ${search.experimentName} (${search.preset} preset) after ${count(search.epochs, 'epoch')} (${search.globalStep} child steps)` +
      (last
        ? text
          ? `; epoch ${last.epoch}: training loss ${last.trainLoss.toFixed(3)}, validation perplexity ${last.valid.perplexity?.toFixed(1)} (the report's best)`
          : `; epoch ${last.epoch}: training accuracy ${last.trainAccuracy?.toFixed(3)}, validation accuracy ${last.valid.accuracy?.toFixed(3)} (the report's best)`
        : ''),
    `shared: ${result.shared.scoredOn}`,
    `stand-alone: ${count(standAlone.recipe.epochs, 'epoch')} on ${standAlone.trainedOn}, scored on ${standAlone.scoredOn} (seed ${standAlone.seed})`,
    format(header),
    ...rows.map(format),
    statisticsLine(result.statistics),
  ];
}

/** Shared-weight score against stand-alone score, one labelled dot per architecture. */
export function rankingChart(result: RankingResult): string {
  const text = result.space === 'rnn';
  const { kendallTauB: tau, spearmanRho: rho, top } = result.statistics;
  const trained = result.architectures.filter((a) => a.standAlone.test !== null);
  const diverged = result.architectures.length - trained.length;
  return lineChart({
    title: `${result.spec.space}: shared weights vs stand-alone (τ ${fixed(tau, 2)}, ρ ${fixed(rho, 2)}, top-${top.k} ${top.overlap}/${top.k})`,
    xLabel: text ? 'shared-weight validation perplexity (lower is better)' : 'shared-weight validation accuracy',
    yLabel: text ? `stand-alone test perplexity, ${result.standAlone.recipe.epochs} epochs` : `stand-alone test accuracy, ${result.standAlone.recipe.epochs} epochs`,
    series: [
      {
        name: `${result.architectures.length} random architectures (label: sample index)${diverged ? `; ${diverged} diverged alone, not shown` : ''}`,
        style: 'points',
        points: trained.map((a) => ({
          x: text ? a.shared.perplexity! : a.shared.accuracy!,
          y: text ? a.standAlone.test!.perplexity! : a.standAlone.test!.accuracy!,
          label: String(a.index),
        })),
      },
    ],
  });
}
