/*
 * config.yml and every examples/*.yml as nnictl would read them: a space of ours, a trialCommand
 * our trial options accept (and that fits the space), classArgs the tuner accepts, and every file
 * the config refers to present.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig, searchSpaceOfConfig } from '../common/nni-config.js';
import { specOfSearchSpace } from '../search-spaces/spaces.js';
import { defaultNb201TablePath } from '../trial/nb201-table.js';
import { checkOptionsForSpace, parseTrialArgs, shellWords, trialArgsOfCommand } from '../trial/options.js';
import { parseClassArgs } from '../tuner/args.js';
import { REPO } from './trial-helpers.js';

const CONFIGS = ['config.yml', ...readdirSync(join(REPO, 'examples')).filter((name) => name.endsWith('.yml')).map((name) => join('examples', name))];

/** What nnictl's class-args validators accept for the built-in tuners the examples use. */
const BUILT_IN_ARGS: Record<string, { required: string[]; optional: string[] }> = {
  TPE: { required: [], optional: ['optimize_mode', 'seed', 'tpe_args'] },
  Random: { required: [], optional: ['seed'] },
  Evolution: { required: ['optimize_mode'], optional: ['population_size'] },
};

describe('experiment configs', () => {
  it('covers config.yml and the examples: macro, rnn, NB201 table, and TPE/Random/Evolution in shared and scratch modes', () => {
    for (const name of ['macro', 'rnn', 'nb201-table', ...['tpe', 'random', 'evolution'].flatMap((t) => [`micro-${t}-shared`, `micro-${t}-scratch`, `nb201-table-${t}`])])
      expect(CONFIGS).toContain(join('examples', `${name}.yml`));
  });

  for (const file of CONFIGS)
    it(`${file} is ready for nnictl create`, () => {
      const config = loadExperimentConfig(join(REPO, file));
      const spec = specOfSearchSpace(searchSpaceOfConfig(config));
      expect(existsSync(config.searchSpaceFile!)).toBe(true);
      expect(config.trialCodeDirectory).toBe(REPO);
      expect(config.trainingService.platform).toBe('local');
      expect(config.trialConcurrency).toBeGreaterThanOrEqual(1);
      // A tuner cannot end an NNI experiment (NNI-PROTOCOL.md a.4).
      expect(config.maxTrialNumber).toBeGreaterThan(0);

      const options = parseTrialArgs(trialArgsOfCommand(config.trialCommand));
      checkOptionsForSpace(options, spec);
      // Trials that load TensorFlow size its threads by how many run at once (trial/backend.ts BackendOptions).
      if (options.mode !== 'table') expect(options.trialConcurrency, '--trial-concurrency').toBe(config.trialConcurrency);
      const entry = shellWords(config.trialCommand).find((word) => word.endsWith('trial/main.js'))!;
      expect(existsSync(resolve(config.trialCodeDirectory, entry)), `${entry} (run npx tsc -p .)`).toBe(true);
      const table = options.mode === 'table' ? (options.table ?? defaultNb201TablePath()) : undefined;
      for (const path of [options.dataDir, table]) if (path) expect(existsSync(resolve(config.trialCodeDirectory, path)), path).toBe(true);

      const tuner = config.tuner;
      if (tuner.name) {
        const allowed = BUILT_IN_ARGS[tuner.name];
        expect(allowed, `built-in tuner ${tuner.name}`).toBeDefined();
        const keys = Object.keys(tuner.classArgs ?? {});
        for (const key of allowed!.required) expect(keys).toContain(key);
        for (const key of keys) expect([...allowed!.required, ...allowed!.optional]).toContain(key);
        if (tuner.classArgs?.optimize_mode !== undefined) expect(tuner.classArgs.optimize_mode).toBe('maximize');
      } else {
        expect(tuner.className).toBe('nni_enas_tuner.EnasTuner');
        expect(existsSync(join(tuner.codeDirectory!, 'nni_enas_tuner.py'))).toBe(true);
        expect(() => parseClassArgs(tuner.classArgs)).not.toThrow();
      }
    });

  it('config.yml is the ENAS micro search on Fashion-MNIST with our tuner and shared trials, two at a time', () => {
    const config = loadExperimentConfig(join(REPO, 'config.yml'));
    expect(specOfSearchSpace(searchSpaceOfConfig(config)).space).toBe('micro');
    expect(parseTrialArgs(trialArgsOfCommand(config.trialCommand))).toMatchObject({ mode: 'shared', dataset: 'fashion-mnist' });
    expect(config.tuner).toMatchObject({ codeDirectory: join(REPO, 'tuner'), className: 'nni_enas_tuner.EnasTuner' });
    expect(config.trialConcurrency).toBe(2);
  });
});
