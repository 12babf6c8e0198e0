/*
 * `nni-enas derive`: picks the architecture of an embedded search (embedded/derive.ts): samples
 * from its trained controller, scores the samples with its shared weights, writes best.json/.svg.
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { BACKENDS, type BackendName } from '../trial/backend.js';
import { startBackend } from './search.js';

interface DeriveArgs {
  run: string;
  samples?: number;
  'valid-batches'?: number;
  backend?: BackendName;
}

const positiveInteger = (value: number | undefined, flag: string): void => {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`${flag} must be a positive integer, got ${value}`);
};

export const deriveCommand: CommandModule<object, DeriveArgs> = {
  command: 'derive',
  describe: 'sample architectures from a search\'s trained controller, score them with its shared weights, keep the best',
  builder: (y) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'the search\'s run directory (nni-enas search --out)' })
      .option('samples', { type: 'number', describe: 'architectures to sample (default: the search preset\'s)' })
      .option('valid-batches', { type: 'number', describe: 'score each on the first k validation batches instead of the whole split' })
      .option('backend', { choices: BACKENDS, describe: 'TensorFlow.js backend (default: the search\'s)' })
      .example('$0 derive --run runs/enas-micro-fashion-mnist-default --samples 50', 'score 50 samples on the whole validation split')
      .example('$0 derive --run runs/x --samples 200 --valid-batches 5', 'more samples, each on 500 validation images'),
  handler: async (args) => {
    positiveInteger(args.samples, '--samples');
    positiveInteger(args['valid-batches'], '--valid-batches');
    const [{ readSettings }, { deriveFromRun, derivedLines }, { catchInterrupts }, { ProgressLine, count }] = await Promise.all([
      import('../embedded/settings.js'),
      import('../embedded/derive.js'),
      import('../embedded/interrupt.js'),
      import('../embedded/progress.js'),
    ]);
    const runDir = resolve(args.run);
    const settings = readSettings(runDir);
    const progress = new ProgressLine();
    const print = (line: string) => progress.log(line, process.stdout);
    const backend = await startBackend(args.backend ?? settings.backend ?? undefined, print);
    print(`nni-enas derive: ${runDir}, backend ${backend.detail}`);
    const stop = catchInterrupts(print);
    try {
      const options = {
        samples: args.samples ?? settings.schedule.deriveSamples,
        validBatches: args['valid-batches'] ?? settings.schedule.deriveValidBatches,
      };
      const derived = await deriveFromRun(runDir, settings, options, stop, (done, total) =>
        progress.update({ label: `scoring ${done}/${total}`, fraction: done / total, etaSeconds: null, stats: '' }),
      );
      progress.close();
      if (!derived) {
        print('derive stopped; nothing written');
        process.exitCode = 130;
        return;
      }
      print(`shared weights and controller after ${count(derived.epochs, 'epoch')}`);
      for (const line of derivedLines(settings, derived.parts, derived.result)) print(line);
      print(`wrote ${derived.files.join(', ')}`);
    } finally {
      stop.dispose();
    }
  },
};
