/*
 * Tuner benchmark on the NAS-Bench-201 table, without NNI: our ENAS controller against uniform
 * random sampling (the controller's `random` policy, the paper's ablation, ENAS.md §4), each for
 * several seeds. Every (strategy, seed) becomes a run directory in the results format
 * (common/results.ts), so `nni-enas compare` puts them beside NNI's own tuners.
 *
 * Metric = validation accuracy (%), extra.test = test accuracy (%): the NAS-Bench-201 protocol
 * searches by validation and reports the test accuracy of the best-by-validation cell.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_FILE, RunWriter } from '../common/results.js';
import { DEFAULT_SPECS, fromTokens, toParams } from '../search-spaces/spaces.js';
import type { Nb201Genotype } from '../search-spaces/genotype.js';
import { setupBackend } from '../trial/backend.js';
import { Nb201Table } from '../trial/nb201-table.js';
import { CONTROLLER_BACKEND, createController, defaultControllerOptions, type ControllerOptions } from '../tuner/controller.js';

export interface TunerBenchmarkOptions {
  tablePath: string;
  strategies: ControllerOptions['policy'][];
  seeds: number;
  /** Table queries per run. */
  budget: number;
  out: string;
  /** Overrides of the controller's NB201 defaults (tuner/controller.ts), e.g. a larger learning rate. */
  controller: Partial<Pick<ControllerOptions, 'learningRate' | 'numAggregate'>>;
  log: (line: string) => void;
}

/** Runs every (strategy, seed) and returns the run directories written. */
export async function runTunerBenchmark(options: TunerBenchmarkOptions): Promise<string[]> {
  const planned = options.strategies.flatMap((policy) => Array.from({ length: options.seeds }, (_, seed) => ({ policy, seed, dir: join(options.out, `${policy}-seed${seed}`) })));
  // Refuse before any work, rather than after some runs are written.
  const taken = planned.filter(({ dir }) => existsSync(join(dir, RUN_FILE)));
  if (taken.length) throw new Error(`${taken.map((t) => t.dir).join(', ')} already hold${taken.length === 1 ? 's' : ''} a run; choose another --out`);
  await setupBackend(CONTROLLER_BACKEND);
  const table = Nb201Table.load(options.tablePath);
  const spec = DEFAULT_SPECS.nb201;
  const dirs: string[] = [];
  for (const { policy, seed, dir } of planned) {
    const controllerOptions: ControllerOptions = { ...defaultControllerOptions(spec), ...options.controller, policy, seed };
    const controller = createController(spec, controllerOptions);
    const writer = RunWriter.create(dir, {
      name: `${policy}-nb201-seed${seed}`,
      tuner: policy,
      mode: 'table',
      space: 'nb201',
      seed,
      optimize: 'maximize',
      meta: {
        table: options.tablePath,
        budget: options.budget,
        // The reference rewards are accuracies in [0, 1]; the table gives percent.
        reward: 'validation accuracy / 100',
        controller: controllerOptions,
      },
    });
    let best = { valid: -Infinity, test: Number.NaN };
    try {
      for (let query = 0; query < options.budget; query++) {
        const tokens = controller.propose();
        const genotype = fromTokens(spec, tokens) as Nb201Genotype;
        const entry = table.lookup(genotype);
        controller.observe(tokens, entry.validAccuracy / 100);
        writer.append({ parameter_id: query, parameters: toParams(genotype, spec), metric: entry.validAccuracy, extra: { test: entry.testAccuracy } });
        if (entry.validAccuracy > best.valid) best = { valid: entry.validAccuracy, test: entry.testAccuracy };
      }
    } finally {
      writer.close();
      controller.dispose();
    }
    options.log(`${dir}: best validation ${best.valid.toFixed(2)}, its test ${best.test.toFixed(2)}`);
    dirs.push(dir);
  }
  return dirs;
}
