/*
 * `nni-enas bench search-quality`: ENAS against random search with weight sharing and against
 * uniformly random cells, each retrained with the same budget (bench/search-quality.ts).
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS, type BackendName } from '../trial/backend.js';
import { PRESET_NAMES, type PresetName } from '../embedded/presets.js';
import { PASS_THROUGH_FLAGS, PieceFailure, runSearchQuality, type PassThroughFlag, type SearchFlags } from '../bench/search-quality.js';

type SearchQualityArgs = {
  config: string;
  seeds: number;
  'random-cells': number;
  out?: string;
  preset: PresetName;
  'retrain-preset': PresetName;
  parallel: number;
  backend?: BackendName;
} & Partial<Record<PassThroughFlag, string | number>>;

/** What each passed-through flag does in `nni-enas search` (cli/search.ts). */
const PASS_THROUGH_HELP: Record<PassThroughFlag, string> = {
  epochs: 'epochs of each search',
  'controller-steps': 'controller updates per epoch',
  'num-aggregate': 'rewards per controller update',
  'derive-samples': 'architectures each closing derive samples',
  'warmup-epochs': 'epochs of uniformly random architectures before the controller trains',
  'reward-batches': 'score all rewards of a controller update on the same K validation batches',
  'weight-sharing': 'CNN supernets: per-input (reference) or per-node op weights',
  'init-scale': "CNNs: scale of the He-normal init's standard deviation",
  'grad-clip': "CNN supernets: clip the gradient's global norm",
  subset: "images per class of each split (text: tokens per split) instead of the preset's",
  channels: 'CNN channels of the first stage',
  layers: 'micro: num_layers',
  hidden: 'rnn: hidden and embedding size',
  'batch-size': 'training batch',
};

export const searchQualityCommand: CommandModule<object, SearchQualityArgs> = {
  command: 'search-quality',
  describe: 'does the controller help? ENAS vs. random search with sharing vs. random cells, each retrained with the same budget',
  builder: (y) => {
    let built = y
      .option('config', { type: 'string', default: 'config.yml', describe: 'NNI experiment config of the search (micro, macro or rnn)' })
      .option('seeds', { type: 'number', default: 3, describe: 'search seeds 0…n−1: one ENAS and one random-with-sharing search each' })
      .option('random-cells', { type: 'number', default: 5, describe: 'uniformly random cells retrained (seeds 1…n, the same for every search seed)' })
      .option('out', { type: 'string', describe: 'output directory (default runs/search-quality-<experimentName>-<preset>); a rerun continues it' })
      .option('preset', { choices: PRESET_NAMES, default: 'default' as PresetName, describe: 'search preset' })
      .option('retrain-preset', { choices: PRESET_NAMES, default: 'default' as PresetName, describe: 'retrain preset, the same for every cell' })
      .option('parallel', { type: 'number', default: 1, describe: 'pieces run at once (2 on 2 cores: each search then trains in one worker thread)' })
      .option('backend', { choices: BACKENDS, describe: 'TensorFlow.js backend of every piece (default: the fastest that loads)' }) as Argv<SearchQualityArgs>;
    for (const flag of Object.keys(PASS_THROUGH_FLAGS) as PassThroughFlag[])
      built = built.option(flag, { ...PASS_THROUGH_FLAGS[flag], group: 'Passed to every search:', describe: PASS_THROUGH_HELP[flag] }) as Argv<SearchQualityArgs>;
    return built
      .example('$0 bench search-quality --config config.yml', 'micro: 3 seeds × 2 searches, then 11 retrainings; hours on 2 cores')
      .example('$0 bench search-quality --config examples/rnn.yml --seeds 1 --parallel 2', 'rnn on ../shared/data/kjv-ptb, two pieces at a time')
      .example('$0 bench search-quality --preset tiny --retrain-preset tiny --seeds 1 --random-cells 2 --out /tmp/sq', 'a smoke run of about a minute');
  },
  handler: async (args) => {
    const searchFlags: SearchFlags = {};
    for (const flag of Object.keys(PASS_THROUGH_FLAGS) as PassThroughFlag[]) if (args[flag] !== undefined) searchFlags[flag] = args[flag];
    let outcome: Awaited<ReturnType<typeof runSearchQuality>>;
    try {
      outcome = await runSearchQuality({
        config: args.config,
        seeds: args.seeds,
        randomCells: args['random-cells'],
        out: args.out,
        preset: args.preset,
        retrainPreset: args['retrain-preset'],
        searchFlags,
        backend: args.backend,
        parallel: args.parallel,
        log: (line) => console.error(line),
      });
    } catch (error) {
      // Bad input is refused before anything runs and leaves through cli/main.ts (exit 2); a failed piece exits 1.
      if (!(error instanceof PieceFailure)) throw error;
      console.error(`nni-enas: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    if (outcome.stopped) {
      console.error('stopped; run the same command again to continue');
      process.exitCode = 130;
      return;
    }
    process.stdout.write(outcome.markdown);
    console.error(`wrote ${outcome.files.join(' and ')}`);
  },
};
