/*
 * `--mode scratch`: standard NAS/HPO trials. Train this architecture's own network (trial/fixed)
 * from fresh weights for E epochs, validate after each (PERIODICAL), report the last validation
 * score as FINAL. Nothing is shared between trials, so any NNI tuner and assessor apply as usual.
 */
import type { StepStats } from './model.js';
import { seconds } from './outputs.js';
import type { RunContext, Task } from './task.js';

export async function runScratch(context: RunContext, task: Task): Promise<void> {
  const { options, architecture, metrics, print, phases } = context;
  const { genotype } = architecture;
  const epochs = options.epochs;
  const model = task.createFixed(genotype, epochs * task.batchesPerEpoch);
  context.recordArchitecture();
  phases.end('model');

  const trainer = task.trainer(model, 0);
  let last: { score: ReturnType<Task['validate']>; train: { default: number; loss: number } } | undefined;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const started = performance.now();
    const lr = task.scratchLr(epoch, epochs);
    const steps: StepStats[] = [];
    for (let b = 0; b < task.batchesPerEpoch; b++) steps.push(trainer.step(genotype, lr));
    const score = task.validate(model, genotype);
    const train = task.trainingMetric(steps);
    last = { score, train };
    await metrics.reportIntermediate({
      default: score.reward,
      loss: score.loss,
      ...(score.perplexity !== undefined && { ppl: score.perplexity }),
    });
    print(
      `epoch ${epoch + 1}/${epochs}: lr ${lr.toPrecision(3)}, train loss ${train.loss.toFixed(4)}, ` +
        `validation ${task.kind === 'image' ? 'accuracy' : '80/perplexity'} ${score.reward.toFixed(4)} ` +
        `(loss ${score.loss.toFixed(4)}), ${seconds(performance.now() - started)}`,
    );
  }
  phases.end('train');
  model.dispose();

  const { score, train } = last!;
  await metrics.reportFinal({
    default: score.reward,
    valid_loss: score.loss,
    ...(score.perplexity !== undefined && { ppl: score.perplexity }),
    train_loss: train.loss,
    epochs,
  });
  print(`final validation ${task.kind === 'image' ? 'accuracy' : '80/perplexity'} ${score.reward.toFixed(4)} after ${epochs} epochs`);
  print(`timings: ${phases.line()}`);
}
