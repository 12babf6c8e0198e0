/*
 * `--mode shared`: one ENAS step per NNI trial. Load the shared supernet weights from the store
 * (the first trial initialises it from the seeded initial weights), score this architecture on
 * V validation batches with those weights — the reward, measured before training on it, as the
 * reference's controller phase scores arcs (ENAS.md §2–3) — then train the shared weights on it
 * for S batches and merge the change into the store. With any NNI tuner this is search with
 * weight sharing; with Random it is the paper's random-search ablation (ENAS.md §4).
 *
 * Schedule across trials: the store holds an int32 global step next to the weights; commits add
 * each trial's S steps. A trial reads data from position `step` of the seeded per-epoch order
 * and takes the reference's epoch-granular cosine lr at ⌊step / batches per epoch⌋ (ENAS.md §3),
 * so the schedule runs on as if one process trained. Under concurrency, trials that load the same
 * store version start from the same step: they train on the same S batches (each with its own
 * architecture; the merge then works like one larger batch) and the counter moves past the
 * window the second one would have taken, so those batches are skipped this epoch. Trials that
 * load after a commit read a fresh window. NNI starts trials that end in the same poll together,
 * so with trialConcurrency c and trials of equal length an epoch can see as few as 1/c of its
 * batches, each c times (reshuffled every epoch, so all data is still used). The lr is
 * unaffected: it counts steps taken, as the reference's does. Reward batches advance by V per committed trial, so trials loading the same
 * version are scored on the same images, a like-for-like comparison.
 */
import { commitUpdate, initStore, type StoreTensor, type StoreTensors } from './store.js';
import { GLOBAL_STEP, loadSharedStore, nonFiniteTensor, type SharedStore } from './shared-store.js';
import { checkStateLayout, readModelState } from './store-tf.js';
import type { StepStats } from './model.js';
import { seconds } from './outputs.js';
import type { RunContext, Task } from './task.js';

const stepTensor = (step: number): StoreTensor => ({ shape: [], data: Int32Array.of(step) });

/** The store's view of a model at `step`: its state plus the global step. */
function storeTensors(state: ReturnType<typeof readModelState>, step: number): StoreTensors {
  return new Map([...state, [GLOBAL_STEP, stepTensor(step)]]);
}

/** Every S/4 steps, so NNI's chart gets a few points per trial without a PUT per step. */
const reportEvery = (steps: number): number => Math.max(1, Math.ceil(steps / 4));

/** Runs the trial on the store in `storeDir`, `loaded` by trial.ts while the data was read (undefined: none yet, this trial writes it). */
export async function runShared(context: RunContext, task: Task, storeDir: string, loaded: SharedStore | undefined): Promise<void> {
  const { options, architecture, metrics, print, phases } = context;
  const { genotype } = architecture;
  const description = task.supernetDescription;
  let store = loaded;
  if (!store) {
    const initial = task.createSupernet();
    await initStore(storeDir, storeTensors(readModelState(initial.state), 0), { model: description });
    initial.dispose();
    store = loadSharedStore(storeDir)!;
    phases.end('store load');
  }
  const { snapshot, weights } = store;
  // A store of another model is refused by its description, before any tensor is compared.
  if (JSON.stringify(snapshot.meta.model) !== JSON.stringify(description))
    throw new Error(
      `weight store ${storeDir} holds ${JSON.stringify(snapshot.meta.model ?? 'no nni-enas supernet')}, ` +
        `this trial needs ${JSON.stringify(description)}: pass another --store, or delete that directory`,
    );
  const step = snapshot.tensors.get(GLOBAL_STEP)?.data[0];
  if (step === undefined) throw new Error(`weight store ${storeDir} has no ${GLOBAL_STEP} tensor`);
  // Built from the stored weights: the seeded init they replace is never computed.
  const model = task.createSupernet(weights);
  checkStateLayout(model.state, weights, `use weight store ${storeDir}`, 'the store');
  // Checked while the model was built (on the read-ahead worker when there is one), before anything is written or scored.
  await store.checked;
  context.recordArchitecture();
  phases.end('model');

  const score = task.score(model, genotype, (snapshot.version - 1) * options.validBatches, options.validBatches);
  phases.end('score');

  const trainer = task.trainer(model, step);
  const every = reportEvery(options.trainSteps);
  const window: StepStats[] = [];
  const all: StepStats[] = [];
  for (let i = 0; i < options.trainSteps; i++) {
    const stats = trainer.step(genotype, task.searchLr(step + i));
    // Diverged weights must not reach the store, where every later trial would load them.
    if (!Number.isFinite(stats.loss))
      throw new Error(
        `training diverged: loss ${stats.loss} at step ${i + 1} of ${options.trainSteps} (lr ${task.searchLr(step + i).toPrecision(3)}); ` +
          `nothing committed to the weight store ${storeDir}`,
      );
    window.push(stats);
    all.push(stats);
    if ((i + 1) % every === 0 || i + 1 === options.trainSteps) {
      await metrics.reportIntermediate(task.trainingMetric(window.splice(0)));
    }
  }
  phases.end('train');

  const trained = storeTensors(readModelState(model.state), step + options.trainSteps);
  const diverged = nonFiniteTensor(trained);
  if (diverged) throw new Error(`training diverged: non-finite values in "${diverged}"; nothing committed to the weight store ${storeDir}`);
  const commit = await commitUpdate(storeDir, snapshot.version, snapshot.tensors, trained);
  model.dispose();
  phases.end('commit');

  const train = task.trainingMetric(all);
  await metrics.reportFinal({
    default: score.reward,
    valid_loss: score.loss,
    ...(score.perplexity !== undefined && { ppl: score.perplexity }),
    train_loss: train.loss,
    global_step: step + options.trainSteps,
    store_version: commit.version,
    lr: task.searchLr(step),
  });
  const measured = task.kind === 'image' ? 'accuracy' : '80/perplexity';
  print(`reward ${score.reward.toFixed(4)}: ${measured} on ${score.batches} validation batches with the shared weights, before training`);
  print(
    `trained ${options.trainSteps} steps at lr ${task.searchLr(step).toPrecision(3)}: train loss ${train.loss.toFixed(4)}, ` +
      `${task.kind === 'image' ? 'accuracy' : '80/perplexity'} ${train.default.toFixed(4)}`,
  );
  print(
    `store ${storeDir}: version ${snapshot.version} → ${commit.version}, global step ${step} → ${step + options.trainSteps}` +
      (commit.concurrentCommits ? ` (merged onto ${commit.concurrentCommits} concurrent commit${commit.concurrentCommits > 1 ? 's' : ''})` : ''),
  );
  const outside = phases.totalMs - phases.ms('score') - phases.ms('train');
  print(`timings: ${phases.line()}; outside scoring and training ${seconds(outside)} (${((100 * outside) / phases.totalMs).toFixed(0)}%)`);
}
