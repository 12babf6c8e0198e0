/*
 * Weight-store cost for one supernet's full state: save (a commit nobody raced), save with a merge
 * (another trial committed in between), and load (read + checksum + assign into the variables).
 * Medians of several rounds. Prints one JSON line.
 *
 *   node dist/bench/store-io.js --space micro|macro|rnn [--rounds 7]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setupBackend } from '../trial/backend.js';
import type { TrainableModel } from '../trial/model.js';
import { commitUpdate, initStore, loadStore } from '../trial/store.js';
import { assignModelState, readModelState } from '../trial/store-tf.js';
import { MacroSupernet } from '../trial/supernet/macro.js';
import { MicroSupernet } from '../trial/supernet/micro.js';
import { RnnSupernet } from '../trial/supernet/rnn.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { space: { type: 'string', default: 'micro' }, rounds: { type: 'string', default: '7' } } });
await setupBackend('wasm');
const fashionShape: [number, number, number] = [28, 28, 1];
const model: TrainableModel =
  values.space === 'macro'
    ? new MacroSupernet({ inputShape: fashionShape })
    : values.space === 'rnn'
      ? new RnnSupernet({})
      : new MicroSupernet({ inputShape: fashionShape });

const dir = mkdtempSync(join(tmpdir(), 'nni-enas-store-bench-'));
const tensors = readModelState(model.state);
const bytes = [...tensors.values()].reduce((n, t) => n + t.data.byteLength, 0);
await initStore(dir, tensors, {});
const [save, merge, load] = [[], [], []] as number[][];
for (let round = 0; round < Number(values.rounds); round++) {
  const base = loadStore(dir);
  let start = performance.now();
  await commitUpdate(dir, base.version, base.tensors, tensors);
  save.push(performance.now() - start);
  // A stale base forces the merge path: newest + (trained − base).
  start = performance.now();
  await commitUpdate(dir, base.version, base.tensors, tensors);
  merge.push(performance.now() - start);
  start = performance.now();
  assignModelState(model.state, loadStore(dir).tensors);
  load.push(performance.now() - start);
}
rmSync(dir, { recursive: true, force: true });
model.dispose();
console.log(
  JSON.stringify({
    bench: 'store-io',
    space: values.space,
    tensors: tensors.size,
    megabytes: Math.round(bytes / 1e4) / 100,
    saveMs: Math.round(median(save) * 10) / 10,
    mergeSaveMs: Math.round(median(merge) * 10) / 10,
    loadMs: Math.round(median(load) * 10) / 10,
  }),
);
