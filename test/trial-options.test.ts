/*
 * The trial's command line (trial/options.ts): defaults, checks with one-line errors, and reading
 * a config.yml trialCommand with the same definitions, as the embedded runner will.
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../trial/backend.js';
import { BACKEND_CHOICES, DEFAULT_TRAIN_STEPS, DEFAULT_VALID_BATCHES, parseTrialArgs, shellWords, trialArgsOfCommand, UsageError } from '../trial/options.js';

const usageError = (argv: string[]): string => {
  try {
    parseTrialArgs(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
};

describe('trial options', () => {
  it('has defaults for everything but the sizes, which depend on the space', () => {
    expect(parseTrialArgs([])).toEqual({
      mode: 'shared',
      validFraction: 0.1,
      bptt: 35,
      trainSteps: DEFAULT_TRAIN_STEPS,
      validBatches: DEFAULT_VALID_BATCHES,
      epochs: 10,
      seed: 0,
      weightSharing: 'per-input',
      initScale: 1,
      trialConcurrency: 1,
    });
  });

  it('reads every flag', () => {
    const options = parseTrialArgs(
      ('--mode scratch --dataset cifar10 --data-dir /d --subset 3 --valid-fraction 0.2 --channels 8 --layers 0 --hidden 16 ' +
        '--bptt 5 --batch-size 4 --eval-batch-size 6 --train-steps 7 --valid-batches 2 --epochs 3 --table t.csv --store s ' +
        '--output o --backend cpu --seed 9 --weight-sharing per-node --init-scale 0.5 --grad-clip 5 --params {} --trial-concurrency 2').split(' '),
    );
    expect(options).toEqual({
      mode: 'scratch',
      dataset: 'cifar10',
      dataDir: '/d',
      subset: 3,
      validFraction: 0.2,
      channels: 8,
      layers: 0,
      hidden: 16,
      bptt: 5,
      batchSize: 4,
      evalBatchSize: 6,
      trainSteps: 7,
      validBatches: 2,
      epochs: 3,
      table: 't.csv',
      store: 's',
      output: 'o',
      backend: 'cpu',
      seed: 9,
      weightSharing: 'per-node',
      initScale: 0.5,
      gradClip: 5,
      params: '{}',
      trialConcurrency: 2,
    });
  });

  it('offers every TensorFlow.js backend of trial/backend.ts', () => {
    expect(BACKEND_CHOICES).toEqual(BACKENDS);
  });

  it('lets a flag appended to a copied trialCommand override the earlier one', () => {
    expect(parseTrialArgs(['--train-steps', '20', '--train-steps', '3']).trainSteps).toBe(3);
  });

  it('refuses bad values with one line naming the flag', () => {
    expect(usageError(['--train-steps', '0'])).toBe('--train-steps must be an integer >= 1, got 0');
    expect(usageError(['--channels', '2.5'])).toBe('--channels must be an integer >= 1, got 2.5');
    expect(usageError(['--epochs', 'many'])).toBe('--epochs must be an integer >= 1, got NaN');
    expect(usageError(['--valid-fraction', '1'])).toBe('--valid-fraction must be in (0, 1), got 1');
    expect(usageError(['--init-scale', '0'])).toBe('--init-scale must be a positive number, got 0');
    expect(usageError(['--grad-clip', '-1'])).toBe('--grad-clip must be a positive number, got -1');
    expect(usageError(['--weight-sharing', 'per-op'])).toMatch(/weight-sharing.*per-op/);
    expect(usageError(['--mode', 'oneshot'])).toMatch(/mode.*oneshot/);
    expect(usageError(['--trainsteps', '3'])).toMatch(/Unknown argument: trainsteps/);
    expect(usageError(['extra'])).toMatch(/extra/);
    expect(usageError(['--params', '{}', '--params-file', 'p.json'])).toBe('give --params or --params-file, not both');
    for (const argv of [['--train-steps', '0'], ['--mode', 'x'], ['--nope']]) expect(usageError(argv)).not.toContain('\n');
  });

  it('reads the trial flags out of a config.yml trialCommand', () => {
    expect(trialArgsOfCommand('node dist/trial/main.js --mode shared --dataset fashion-mnist')).toEqual(['--mode', 'shared', '--dataset', 'fashion-mnist']);
    expect(trialArgsOfCommand(`/usr/bin/node --max-old-space-size=4096 /repo/dist/trial/main.js --params '{"a": 1}' --data-dir "my data"`)).toEqual([
      '--params',
      '{"a": 1}',
      '--data-dir',
      'my data',
    ]);
    expect(() => trialArgsOfCommand('python3 trial.py')).toThrow(/does not run the nni-enas trial/);
    expect(() => trialArgsOfCommand('node dist/trial/main.js --store $HOME/s')).toThrow(/uses shell syntax \(\$\)/);
    expect(() => trialArgsOfCommand('node dist/trial/main.js && rm -rf x')).toThrow(/shell syntax/);
    expect(shellWords(`a\\ b 'c d'e "f"`)).toEqual(['a b', 'c de', 'f']);
    expect(() => shellWords(`a 'b`)).toThrow(/unterminated ' quote/);
  });
});
