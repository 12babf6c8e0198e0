/*
 * How far the ENAS controller moves in a short search (100 updates, as in the `default` presets
 * and the shipped NNI configs) on synthetic rewards of the real scale, with the reference's
 * optimizer settings and with normalised advantages (tuner/controller.ts normalizeAdvantage).
 *
 *   node dist/bench/controller-budget.js [--space micro|macro|rnn|all] [--updates 100] [--target 2]
 *
 * The reward is base + spread·(share of op/activation decisions equal to op `target`) + Gaussian
 * noise: micro and macro 0.25 + 0.1·share ± 0.04 (shared-weight accuracies early in a search on
 * 100-image batches), rnn 0.08 + 0.02·share ± 0.005 (80/ppl at ppl ≈ 1000). Prints the share of
 * the target op in the samples of each tenth of the run, per setting. The micro controller's op
 * logits are capped by its tanh (c/op_tanh_reduce = 0.44, ENAS.md §2), so its share cannot pass
 * ≈0.2 for a non-sep-conv target; the other two can approach 1.
 */
import { parseArgs } from 'node:util';
import { Random } from '../common/random.js';
import { decisions, DEFAULT_SPECS } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { CONTROLLER_BACKEND, createController, defaultControllerOptions, type ControllerOptions } from '../tuner/controller.js';

const { values } = parseArgs({
  options: {
    space: { type: 'string', default: 'all' },
    updates: { type: 'string', default: '100' },
    target: { type: 'string', default: '2' },
  },
});
const SPACES = ['micro', 'macro', 'rnn'] as const;
const spaces = values.space === 'all' ? SPACES : SPACES.filter((s) => s === values.space);
if (!spaces.length) throw new Error('--space must be micro, macro, rnn or all');
const updates = Number(values.updates);
const target = Number(values.target);
await setupBackend(CONTROLLER_BACKEND);

const REWARD = { micro: [0.25, 0.1, 0.04], macro: [0.25, 0.1, 0.04], rnn: [0.08, 0.02, 0.005] } as const;
const SETTINGS: { label: string; options: (reference: ControllerOptions) => Partial<ControllerOptions> }[] = [
  { label: 'reference (raw advantages, reference lr)', options: () => ({}) },
  { label: 'normalised, reference lr', options: () => ({ normalizeAdvantage: true }) },
  { label: 'normalised, lr 0.01', options: () => ({ normalizeAdvantage: true, learningRate: 0.01 }) },
  { label: 'normalised, lr 0.03', options: () => ({ normalizeAdvantage: true, learningRate: 0.03 }) },
];

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const space of spaces) {
  const spec = DEFAULT_SPECS[space];
  const isOp = decisions(spec).map((d) => /_op(_\d)?$|_act$/.test(d.key));
  const [base, spread, sigma] = REWARD[space];
  const reference = defaultControllerOptions(spec);
  console.log(`\n${space}: ${updates} updates × ${reference.numAggregate} rewards; reward ${base} + ${spread}·share(op ${spec.ops[target]}) ± ${sigma}`);
  console.log('  share of the target op in each tenth of the run (first … last)');
  for (const { label, options } of SETTINGS) {
    const noise = new Random(7);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - noise.next())) * Math.cos(2 * Math.PI * noise.next());
    const controller = createController(spec, { ...reference, seed: 3, ...options(reference) });
    const shares: number[] = [];
    let done = 0;
    while (done < updates) {
      const tokens = controller.propose();
      const ops = tokens.filter((_, i) => isOp[i]);
      const share = ops.filter((t) => t === target).length / ops.length;
      shares.push(share);
      if (controller.observe(tokens, base + spread * share + sigma * gauss())) done++;
    }
    controller.dispose();
    const tenth = shares.length / 10;
    const tenths = Array.from({ length: 10 }, (_, k) => mean(shares.slice(k * tenth, (k + 1) * tenth)).toFixed(2));
    console.log(`  ${label.padEnd(42)} ${tenths.join(' ')}`);
    console.log(JSON.stringify({ bench: 'controller-budget', space, setting: label, updates, tenths: tenths.map(Number) }));
  }
}
