/*
 * Controller latency per TensorFlow.js backend, to choose the tuner's backend
 * (tuner/controller.ts CONTROLLER_BACKEND). The controller is a small LSTM, so its cost is the
 * per-op overhead of a few hundred to a few thousand tiny kernels per call.
 *
 *   node dist/bench/controller-latency.js --backend wasm [--calls 60]
 *
 * One backend per process (tfjs cannot switch cleanly). For a fair comparison, alternate processes
 * (cpu, wasm, cpu, wasm, …) and compare medians. Prints one JSON line per space with the default
 * options: milliseconds per propose, and per update (the observe that completes numAggregate
 * rewards and runs their batched teacher-forced pass, backward pass and Adam step).
 */
import { parseArgs } from 'node:util';
import tf = require('@tensorflow/tfjs-core');
import { BACKENDS, setupBackend, type BackendName } from '../trial/backend.js';
import { DEFAULT_SPECS } from '../search-spaces/spaces.js';
import { createController, defaultControllerOptions } from '../tuner/controller.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    calls: { type: 'string', default: '60' },
  },
});
const backend = values.backend as BackendName;
if (!BACKENDS.includes(backend)) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}`);
const calls = Number(values.calls);
await setupBackend(backend);

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

for (const spec of Object.values(DEFAULT_SPECS)) {
  const options = defaultControllerOptions(spec);
  const controller = createController(spec, options);
  const warmup = options.numAggregate;
  run(controller, warmup);
  const tensorsBefore = tf.memory().numTensors;
  const { propose, update } = run(controller, calls);
  const leaked = tf.memory().numTensors - tensorsBefore;
  controller.dispose();
  console.log(
    JSON.stringify({
      backend,
      space: spec.space,
      numAggregate: options.numAggregate,
      proposeMs: +median(propose).toFixed(2),
      updateMs: +median(update).toFixed(1),
      updates: update.length,
      leakedTensors: leaked,
    }),
  );
}

/** `count` proposals, each rewarded at once; the times of the proposals and of the observes that updated. */
function run(controller: ReturnType<typeof createController>, count: number): { propose: number[]; update: number[] } {
  const propose: number[] = [];
  const update: number[] = [];
  for (let call = 0; call < count; call++) {
    let tokens: number[] = [];
    propose.push(timed(() => (tokens = controller.propose())));
    let stepped = false;
    const observeMs = timed(() => (stepped = controller.observe(tokens, Math.random())));
    if (stepped) update.push(observeMs);
  }
  return { propose, update };
}
