/*
 * The ENAS controller against random search on NAS-Bench-201 by table lookup, with no training.
 * A query is one proposal. Its reward is the cell's validation accuracy as a fraction, the scale of
 * ENAS's CIFAR rewards (ENAS.md §2). Duplicate proposals count as queries. After 50, 100 and 200
 * queries, the score is the test accuracy of the best-by-validation cell queried so far. The
 * table gives mean ± standard error over the seeds.
 *
 *   node dist/bench/nb201-controller.js [table.csv] [--seeds 20] [--first-seed 0]
 *        [--queries 200] [--checkpoints 50,100,200] [--options '{"learningRate":0.01}']
 *
 * The table defaults to ../shared/data/nasbench201/nb201-cifar10valid.csv from the repository
 * root. `--options` overrides the nb201 defaults of tuner/controller.ts. Tune them on seeds other
 * than the reported ones (the defaults were tuned on --first-seed 1000).
 */
import { parseArgs } from 'node:util';
import { setupBackend } from '../trial/backend.js';
import { Nb201Table, defaultNb201TablePath } from '../trial/nb201-table.js';
import { DEFAULT_SPECS, fromTokens } from '../search-spaces/spaces.js';
import type { Nb201Genotype } from '../search-spaces/genotype.js';
import { CONTROLLER_BACKEND, createController, defaultControllerOptions, type ControllerOptions } from '../tuner/controller.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seeds: { type: 'string', default: '20' },
    'first-seed': { type: 'string', default: '0' },
    queries: { type: 'string', default: '200' },
    checkpoints: { type: 'string', default: '50,100,200' },
    options: { type: 'string', default: '{}' },
  },
});
const seeds = Number(values.seeds);
const firstSeed = Number(values['first-seed']);
const queries = Number(values.queries);
const checkpoints = values.checkpoints.split(',').map(Number);
if (checkpoints.some((c) => !(c >= 1 && c <= queries))) throw new Error(`--checkpoints must lie in [1, ${queries}]`);
const overrides = JSON.parse(values.options) as Partial<ControllerOptions>;

const tablePath = positionals[0] ?? defaultNb201TablePath();
const table = Nb201Table.load(tablePath);
await setupBackend(CONTROLLER_BACKEND);
const spec = DEFAULT_SPECS.nb201;
const options: ControllerOptions = { ...defaultControllerOptions(spec), ...overrides };

interface Run {
  /** Test accuracy (%) of the best-by-validation cell at each checkpoint. */
  atCheckpoint: number[];
  distinct: number;
}

function search(policy: ControllerOptions['policy'], seed: number): Run {
  const strategy = createController(spec, { ...options, policy, seed });
  const seen = new Set<string>();
  let bestValid = -Infinity;
  let bestTest = NaN;
  const atCheckpoint: number[] = [];
  for (let query = 1; query <= queries; query++) {
    const tokens = strategy.propose();
    const entry = table.lookup(fromTokens(spec, tokens) as Nb201Genotype);
    seen.add(entry.arch);
    if (entry.validAccuracy > bestValid) {
      bestValid = entry.validAccuracy;
      bestTest = entry.testAccuracy;
    }
    strategy.observe(tokens, entry.validAccuracy / 100);
    if (checkpoints.includes(query)) atCheckpoint.push(bestTest);
  }
  strategy.dispose();
  return { atCheckpoint, distinct: seen.size };
}

const meanAndError = (xs: number[]): [number, number] => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1);
  return [mean, Math.sqrt(variance / xs.length)];
};
const show = ([mean, error]: [number, number]): string => `${mean.toFixed(2)} ± ${error.toFixed(2)}`;

const started = performance.now();
const runs = { enas: [] as Run[], random: [] as Run[] };
for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
  runs.enas.push(search('enas', seed));
  runs.random.push(search('random', seed));
}

const optimum = table.bestByValidation();
console.log(`NAS-Bench-201 cifar10-valid (${tablePath}), ${table.size} cells; best by validation: ${optimum.testAccuracy.toFixed(2)} test`);
const { policy: _policy, seed: _seed, ...shared } = options;
console.log(`seeds ${firstSeed}..${firstSeed + seeds - 1}, each for both policies; controller options ${JSON.stringify(shared)}`);
console.log('test accuracy (%) of the best-by-validation cell, mean ± s.e.:');
console.log('queries | controller     | random         | controller − random (paired)');
checkpoints.forEach((queryCount, k) => {
  const controller = runs.enas.map((r) => r.atCheckpoint[k]!);
  const random = runs.random.map((r) => r.atCheckpoint[k]!);
  const difference = controller.map((c, i) => c - random[i]!);
  console.log(`${String(queryCount).padStart(7)} | ${show(meanAndError(controller))} | ${show(meanAndError(random))} | ${show(meanAndError(difference))}`);
});
console.log(
  `distinct cells in ${queries} queries: controller ${show(meanAndError(runs.enas.map((r) => r.distinct)))}, random ${show(meanAndError(runs.random.map((r) => r.distinct)))}`,
);
console.log(`time ${((performance.now() - started) / 1000).toFixed(1)} s`);
