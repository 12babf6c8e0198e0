/*
 * What a fresh trial process pays before its first training step, phase by phase: loading
 * TensorFlow.js and the backend (with our kernels), building the supernet, and loading the
 * weight store. The parent (bench/supernet.ts) adds the process spawn itself. Prints one JSON line.
 *
 *   node dist/bench/startup.js --space micro|macro|rnn --store DIR
 */
import { parseArgs } from 'node:util';

const t0 = performance.now();
const { values } = parseArgs({ options: { space: { type: 'string', default: 'micro' }, store: { type: 'string' } } });
const { setupBackend } = await import('../trial/backend.js');
const backend = await setupBackend();
const t1 = performance.now();
const fashionShape: [number, number, number] = [28, 28, 1];
const { MicroSupernet } = await import('../trial/supernet/micro.js');
const { MacroSupernet } = await import('../trial/supernet/macro.js');
const { RnnSupernet } = await import('../trial/supernet/rnn.js');
const model =
  values.space === 'macro'
    ? new MacroSupernet({ inputShape: fashionShape })
    : values.space === 'rnn'
      ? new RnnSupernet({})
      : new MicroSupernet({ inputShape: fashionShape });
const t2 = performance.now();
const { initStore, loadStore } = await import('../trial/store.js');
const { assignModelState, readModelState } = await import('../trial/store-tf.js');
let storeMs = 0;
if (values.store) {
  await initStore(values.store, readModelState(model.state), {});
  const start = performance.now();
  assignModelState(model.state, loadStore(values.store).tensors);
  storeMs = performance.now() - start;
}
console.log(
  JSON.stringify({
    bench: 'startup',
    space: values.space,
    backend: backend.detail,
    importAndBackendMs: Math.round(t1 - t0),
    buildModelMs: Math.round(t2 - t1),
    storeLoadMs: Math.round(storeMs),
  }),
);
model.dispose();
