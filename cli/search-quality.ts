/*
 * `nni-enas bench search-quality`: ENAS against random search with weight sharing and against
 * uniformly random cells, each retrained with the same budget (bench/search-quality.ts).
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS, type BackendName } from '../trial/backend.js';
import { PRESET_NAMES, type PresetName } from '../embedded/presets.js';
import { PieceFailure, runSearchQuality, type SearchFlags } from '../bench/search-quality.js';
import { SEARCH_FLAG_NAMES, SEARCH_FLAGS, SIZE_FLAGS, type SearchFlagValues } from '../embedded/search-flags.js';

type SearchQualityArgs = {
  config: string;
  seeds: number;
  'random-cells': number;
  out?: string;
  preset: PresetName;
  'retrain-preset': PresetName;
  parallel: number;
  backend?: BackendName;
} & SearchFlagValues;

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
    for (const [flag, spec] of Object.entries({ ...SEARCH_FLAGS, ...SIZE_FLAGS }))
      built = built.option(flag, { ...spec, group: 'Passed to every search:' }) as Argv<SearchQualityArgs>;
    return built
      .example('$0 bench search-quality --config config.yml', 'micro: 3 seeds × 2 searches, then 11 retrainings; hours on 2 cores')
      .example('$0 bench search-quality --config examples/rnn.yml --seeds 1 --parallel 2', 'rnn on ../shared/data/kjv-ptb, two pieces at a time')
      .example('$0 bench search-quality --preset tiny --retrain-preset tiny --seeds 1 --random-cells 2 --out /tmp/sq', 'a smoke run of about a minute');
  },
  handler: async (args) => {
    const searchFlags: SearchFlags = {};
    for (const flag of SEARCH_FLAG_NAMES) if (args[flag] !== undefined) Object.assign(searchFlags, { [flag]: args[flag] });
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
