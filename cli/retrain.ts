/*
 * `nni-enas retrain`: trains an architecture's fixed network from scratch with the reference's
 * final recipe scaled by a preset and flags, reports its test score and exports it
 * (embedded/retrain.ts, embedded/export.ts). Resumable like the search.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import type { BackendName } from '../trial/backend.js';
import { DATASETS, type DatasetName } from '../trial/options.js';
import { PRESET_NAMES, RETRAIN_PRESETS, type PresetName, type RetrainRecipe } from '../embedded/presets.js';
import { addSizeOptions, startBackend } from './search.js';

interface RetrainArgs {
  arch: string;
  out?: string;
  preset: PresetName;
  resume: boolean;
  epochs?: number;
  channels?: number;
  cells?: number;
  hidden?: number;
  'batch-size'?: number;
  subset?: number;
  cutout?: number;
  'aux-head'?: boolean;
  'drop-path'?: number;
  seed?: number;
  'random-arch'?: number;
  dataset?: DatasetName;
  'data-dir'?: string;
  backend?: BackendName;
}

/** Flags that shape the network or the data: a resumed retraining keeps its own. */
const FIXED_ON_RESUME = ['preset', 'epochs', 'channels', 'cells', 'hidden', 'batch-size', 'subset', 'cutout', 'aux-head', 'drop-path', 'seed', 'random-arch', 'dataset', 'data-dir'];

function checkRecipe(recipe: RetrainRecipe): void {
  const integer = (value: number | undefined, flag: string, minimum: number) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= minimum)) throw new Error(`${flag} must be an integer >= ${minimum}, got ${value}`);
  };
  integer(recipe.epochs, '--epochs', 1);
  integer(recipe.batchSize, '--batch-size', 1);
  integer(recipe.channels, '--channels', 2);
  integer(recipe.cells, '--cells', 0);
  integer(recipe.hidden, '--hidden', 1);
  integer(recipe.subset, '--subset', 1);
  integer(recipe.cutout, '--cutout', 0);
  if (!(recipe.dropPathKeep > 0 && recipe.dropPathKeep <= 1)) throw new Error(`--drop-path is a keep-probability in (0, 1], got ${recipe.dropPathKeep}`);
}

export const retrainCommand: CommandModule<object, RetrainArgs> = {
  command: 'retrain',
  describe: 'train an architecture from scratch (final recipe), report its test score, export it for TensorFlow.js',
  builder: (y) =>
    addSizeOptions(
      y
        .option('arch', { type: 'string', demandOption: true, describe: 'best.json of a search, a trial\'s architecture.json, or an NNI parameter dict' })
        .option('out', { type: 'string', describe: 'retrain directory (default: retrain-<preset> beside the architecture file)' })
        .option('preset', { choices: PRESET_NAMES, default: 'default' as PresetName, describe: 'size: tiny (seconds), default (minutes), large (the reference\'s final training)' })
        .option('resume', { type: 'boolean', default: false, describe: 'continue the retraining in --out from its checkpoint' })
        .option('epochs', { type: 'number', describe: 'training epochs (one cosine period over them for CNNs)' })
        .option('cells', { type: 'number', describe: 'micro: normal cells (num_layers); the network adds 2 reduction cells (reference 15)' })
        .option('cutout', { type: 'number', describe: 'side of the cutout square, 0 for none (the paper\'s 2.89% used 16)' })
        .option('aux-head', { type: 'boolean', describe: 'micro: auxiliary head, weight 0.4 (--no-aux-head turns it off)' })
        .option('drop-path', { type: 'number', describe: 'micro: drop-path keep-probability of the last cell at the end (reference 0.6; 1 is off)' })
        .option('random-arch', { type: 'number', describe: 'retrain a uniformly random architecture of the same space, drawn with this seed (the paper\'s baseline)' })
        .option('dataset', { choices: DATASETS, describe: 'default: the one the architecture was searched on' })
        .option('data-dir', { type: 'string', describe: 'dataset directory (text: <prefix>.{train,valid,test}.txt)' }),
    )
      .example('$0 retrain --arch runs/enas-micro-fashion-mnist-default/best.json', 'retrain the derived cell, about 8 minutes of one core')
      .example('$0 retrain --arch best.json --epochs 100 --channels 36 --cells 15 --cutout 16', 'closer to the paper\'s final training')
      .example('$0 retrain --arch best.json --random-arch 1', 'the same budget for a random cell of the same space'),
  handler: async (args) => {
    const [retrain, { readArchitectureFile }, { catchInterrupts }, { ProgressLine, count }] = await Promise.all([
      import('../embedded/retrain.js'),
      import('../embedded/architectures.js'),
      import('../embedded/interrupt.js'),
      import('../embedded/progress.js'),
    ]);
    const progress = new ProgressLine();
    const print = (line: string) => progress.log(line, process.stdout);
    const archPath = resolve(args.arch);
    const randomSeed = args['random-arch'] ?? null;
    const defaultOut = join(dirname(archPath), `retrain-${randomSeed === null ? basename(archPath, '.json') : `random${randomSeed}`}-${args.preset}`);
    const dir = resolve(args.out ?? defaultOut);
    let settings: import('../embedded/retrain.js').RetrainSettings;
    if (args.resume) {
      const given = FIXED_ON_RESUME.filter((flag) => process.argv.some((w) => w === `--${flag}` || w === `--no-${flag}` || w.startsWith(`--${flag}=`)));
      if (given.length) throw new Error(`--resume continues ${dir} with its own settings; --${given.join(', --')} cannot change them`);
      settings = retrain.readRetrainSettings(dir);
    } else {
      if (existsSync(join(dir, retrain.RETRAIN_SETTINGS_FILE))) throw new Error(`${dir} already holds a retraining: pass --resume to continue it, or --out for a new one`);
      const loaded = readArchitectureFile(archPath);
      if (loaded.spec.space === 'nb201') throw new Error(`${archPath}: NAS-Bench-201 cells are looked up, not retrained here`);
      const spec = loaded.spec as import('../embedded/retrain.js').RetrainSettings['spec'];
      const dataset = args.dataset ?? loaded.data?.dataset ?? (spec.space === 'rnn' ? 'ptb' : 'fashion-mnist');
      if ((dataset === 'ptb') !== (spec.space === 'rnn')) throw new Error(`--dataset ${dataset} does not fit a ${spec.space} architecture`);
      const preset = RETRAIN_PRESETS[args.preset][spec.space];
      const recipe: RetrainRecipe = {
        ...preset,
        ...(args.epochs !== undefined && { epochs: args.epochs }),
        ...(args.channels !== undefined && { channels: args.channels }),
        ...(args.cells !== undefined && { cells: args.cells }),
        ...(args.hidden !== undefined && { hidden: args.hidden }),
        ...(args['batch-size'] !== undefined && { batchSize: args['batch-size'] }),
        ...(args.subset !== undefined && { subset: args.subset }),
        ...(args.cutout !== undefined && { cutout: args.cutout }),
        ...(args['aux-head'] !== undefined && { auxHead: args['aux-head'] }),
        ...(args['drop-path'] !== undefined && { dropPathKeep: args['drop-path'] }),
      };
      checkRecipe(recipe);
      const dataDir = args['data-dir'] !== undefined ? resolve(args['data-dir']) : (loaded.data?.dataDir ?? null);
      settings = {
        format: 'nni-enas-retrain/1',
        arch: archPath,
        spec,
        genotype: randomSeed === null ? loaded.genotype : retrain.randomArchitecture(spec, randomSeed),
        randomSeed,
        data: { dataset, dataDir },
        preset: args.preset,
        recipe,
        seed: args.seed ?? 0,
        backend: args.backend ?? null,
      };
    }
    const backend = await startBackend(settings.backend ?? undefined, print);
    print(`nni-enas retrain: ${settings.randomSeed === null ? settings.arch : `random ${settings.spec.space} architecture (seed ${settings.randomSeed})`} → ${dir}, backend ${backend.detail}`);
    const stop = catchInterrupts(print);
    try {
      const outcome = await retrain.runRetrain(dir, settings, args.resume, { print, progress, stop });
      if (!outcome.finished) {
        print(`stopped after ${count(outcome.epochs, 'epoch')}; checkpoint written. Continue with:`);
        print(`  npx nni-enas retrain --arch ${settings.arch} --out ${dir} --resume`);
        process.exitCode = 130;
        return;
      }
      const test = outcome.test!;
      print(
        test.accuracy !== null
          ? `test accuracy ${test.accuracy.toFixed(4)} (loss ${test.loss.toFixed(4)}) on ${test.examples} images`
          : `test perplexity ${test.perplexity!.toFixed(2)} (loss ${test.loss.toFixed(4)}) on ${test.examples} tokens`,
      );
      print(`exported: ${outcome.files.join(', ')}`);
    } finally {
      stop.dispose();
    }
  },
};
