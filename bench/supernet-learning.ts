/*
 * How fast the micro supernet learns under different ways of sampling architectures: the
 * diagnosis behind docs/embedded.md, "Does the controller help?". Trains the `default` search
 * preset's supernet (Fashion-MNIST, 300 images per class, C=8, 3+2 cells, batch 64, the
 * reference's cosine schedule) for --steps steps, one architecture per step drawn by --regime,
 * and prints the mean training accuracy and loss of every 50 steps.
 *
 *   node dist/bench/supernet-learning.js --regime uniform [--steps 300] [--lr-scale 1] [-- trial flags…]
 *
 * Regimes: fixed (one random architecture throughout), uniform (a fresh one per step, as a
 * random search or ENAS's young controller), pool<N> (a fresh pick among N fixed ones), ops
 * (random ops, fixed inputs), inputs (random inputs, fixed ops), nosep (random inputs, only
 * pools and identity). Trial flags after `--` (e.g. --grad-clip 5, --weight-sharing per-node,
 * --init-scale 0.4) change the supernet as they do in a search.
 */
import { parseArgs } from 'node:util';
import { Random } from '../common/random.js';
import { MICRO_OPS } from '../search-spaces/genotype.js';
import { decisions, DEFAULT_SPECS, fromTokens } from '../search-spaces/spaces.js';
import { setupBackend } from '../trial/backend.js';
import { parseTrialArgs } from '../trial/options.js';
import { createTask } from '../trial/task.js';

/** A bad flag ends the script with one line and exit status 2, as the CLI's errors do. */
function refuse(message: string): never {
  console.error(`supernet-learning: ${message}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      regime: { type: 'string', default: 'uniform' },
      steps: { type: 'string', default: '300' },
      'lr-scale': { type: 'string', default: '1' },
    },
    allowPositionals: true,
  });
} catch (error) {
  refuse((error as Error).message);
}
const { values, positionals } = parsed;
const steps = Number(values.steps);
const lrScale = Number(values['lr-scale']);
if (!(Number.isInteger(steps) && steps >= 1)) refuse(`--steps must be a positive integer, got ${values.steps}`);
if (!(lrScale > 0)) refuse(`--lr-scale must be positive, got ${values['lr-scale']}`);
const regime = values.regime!;
const poolSize = /^pool(\d+)$/.exec(regime)?.[1];
if (!['fixed', 'uniform', 'ops', 'inputs', 'nosep'].includes(regime) && !poolSize)
  refuse(`--regime must be fixed, uniform, pool<N>, ops, inputs or nosep, got ${regime}`);

const backend = await setupBackend('wasm');
const flags = ['--dataset', 'fashion-mnist', '--subset', '300', '--channels', '8', '--layers', '3', '--batch-size', '64', ...positionals];
const spec = DEFAULT_SPECS.micro;
const task = createTask(parseTrialArgs(flags), spec);
const model = task.createSupernet();
const trainer = task.trainer(model, 0);
const random = new Random(1);
const choices = decisions(spec);
const draw = () => choices.map((d) => random.int(d.choices.length));
const fixed = draw();
const pool = Array.from({ length: Number(poolSize ?? 0) }, draw);
const isOp = (key: string) => key.includes('_op_');
const firstPool = MICRO_OPS.indexOf('avgpool3x3');

const tokens = (): number[] => {
  if (regime === 'fixed') return fixed;
  if (poolSize) return pool[random.int(pool.length)]!;
  return choices.map((d, i) => {
    if (regime === 'ops') return isOp(d.key) ? random.int(d.choices.length) : fixed[i]!;
    if (regime === 'inputs') return isOp(d.key) ? fixed[i]! : random.int(d.choices.length);
    if (regime === 'nosep') return isOp(d.key) ? firstPool + random.int(d.choices.length - firstPool) : random.int(d.choices.length);
    return random.int(d.choices.length);
  });
};

console.log(`backend ${backend.detail}; regime ${regime}, ${steps} steps, lr ×${lrScale}; trial flags ${flags.join(' ')}`);
let sums = { accuracy: 0, loss: 0, n: 0 };
for (let step = 0; step < steps; step++) {
  const stats = trainer.step(fromTokens(spec, tokens()), task.searchLr(step) * lrScale);
  sums = { accuracy: sums.accuracy + stats.accuracy!, loss: sums.loss + stats.loss, n: sums.n + 1 };
  if ((step + 1) % 50 === 0 || step + 1 === steps) {
    console.log(`${regime} steps ${step + 2 - sums.n}–${step + 1}: training accuracy ${(sums.accuracy / sums.n).toFixed(3)} loss ${(sums.loss / sums.n).toFixed(3)}`);
    sums = { accuracy: 0, loss: 0, n: 0 };
  }
}
model.dispose();
