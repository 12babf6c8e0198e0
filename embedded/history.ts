/*
 * The search history (history.jsonl): one JSON line per controller update and one per epoch,
 * with what a reader of a search wants to follow (reward, baseline, entropy, training loss and
 * accuracy, shared-weight validation score, learning rate, time), and the SVG plots drawn from
 * it. Lines are appended as they happen; a resumed run first cuts the file back to the lines its
 * checkpoint had counted, so the history never holds work the checkpoint does not.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, type ChartPoint } from '../common/chart.js';
import { writeFileAtomic } from '../common/files.js';

export const HISTORY_FILE = 'history.jsonl';

/** One controller update: the mean over its numAggregate reward samples. */
export interface UpdateRecord {
  type: 'update';
  epoch: number;
  /** 1-based count of updates since the search began. */
  update: number;
  /** Child training steps taken so far: the x axis shared with epoch records. */
  globalStep: number;
  /** Mean reward of the update's samples (one validation minibatch each, ENAS.md §2). */
  reward: number;
  /** The controller's moving-average baseline after the update. */
  baseline: number;
  /** Mean −log π of the sampled architectures: a Monte-Carlo estimate of the policy's entropy, in nats. */
  entropy: number;
  /** Seconds the search's processes have run, summed across resumes (pauses between them not counted). */
  seconds: number;
}

export interface EpochRecord {
  type: 'epoch';
  /** 1-based: epochs completed. */
  epoch: number;
  globalStep: number;
  lr: number;
  trainLoss: number;
  /** Images only. */
  trainAccuracy: number | null;
  /** Mean reward of the epoch's controller samples; null in warm-up epochs, which have none. */
  reward: number | null;
  baseline: number;
  entropy: number | null;
  /** The architectures sampled for the report with their minibatch rewards (ENAS.md §3 step 3). */
  report: { reward: number; tokens: number[] }[];
  /** The report's best architecture scored on the whole validation split with the shared weights. */
  valid: { reward: number; loss: number; accuracy: number | null; perplexity: number | null; tokens: number[] };
  seconds: number;
  phaseSeconds: { child: number; controller: number; report: number };
}

export type HistoryRecord = UpdateRecord | EpochRecord;

/** Keeps the first `count` lines of a JSON-lines file (dropping anything after, a torn line included). */
export function keepFirstLines(path: string, count: number): void {
  if (!existsSync(path)) {
    if (count > 0) throw new Error(`${path} is missing, the checkpoint counted ${count} lines in it`);
    writeFileAtomic(path, '');
    return;
  }
  // Text ending in a newline splits into its lines plus one empty piece; a torn last line is that piece.
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines.length - 1 < count) throw new Error(`${path} has ${lines.length - 1} lines, fewer than the ${count} its checkpoint counted`);
  writeFileAtomic(path, lines.slice(0, count).map((line) => `${line}\n`).join(''));
}

/** An append-only JSON-lines log (a search's history.jsonl, a retraining's). */
export class HistoryLog<R = HistoryRecord> {
  private count: number;

  private constructor(
    readonly path: string,
    count: number,
  ) {
    this.count = count;
  }

  static create<R = HistoryRecord>(dir: string): HistoryLog<R> {
    const path = join(dir, HISTORY_FILE);
    writeFileAtomic(path, '');
    return new HistoryLog<R>(path, 0);
  }

  /** Reopens the history of a resumed run, cut back to the `lines` its checkpoint counted. */
  static resume<R = HistoryRecord>(dir: string, lines: number): HistoryLog<R> {
    const path = join(dir, HISTORY_FILE);
    keepFirstLines(path, lines);
    return new HistoryLog<R>(path, lines);
  }

  get lines(): number {
    return this.count;
  }

  append(record: R): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
    this.count++;
  }

  records(): R[] {
    return readHistory(this.path) as R[];
  }
}

export function readHistory(path: string): HistoryRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HistoryRecord);
}

export const PLOT_FILES = { reward: 'reward.svg', entropy: 'entropy.svg', valid: 'valid.svg' } as const;

/** Reward, entropy and validation plots of the history so far, into `dir`. */
export function writeHistoryPlots(dir: string, records: readonly HistoryRecord[], kind: 'image' | 'text'): void {
  const updates = records.filter((r): r is UpdateRecord => r.type === 'update');
  const epochs = records.filter((r): r is EpochRecord => r.type === 'epoch');
  const at = <R>(rows: readonly R[], x: (r: R) => number, y: (r: R) => number): ChartPoint[] => rows.map((r) => ({ x: x(r), y: y(r) }));
  const rewardName = kind === 'image' ? 'accuracy on one validation batch' : '80/perplexity on one validation window';
  writeFileAtomic(
    join(dir, PLOT_FILES.reward),
    lineChart({
      title: 'Controller reward per update',
      xLabel: 'controller update',
      yLabel: `reward (${rewardName})`,
      series: [
        { name: 'mean reward of the update', points: at(updates, (r) => r.update, (r) => r.reward) },
        { name: 'baseline', points: at(updates, (r) => r.update, (r) => r.baseline) },
      ],
    }),
  );
  writeFileAtomic(
    join(dir, PLOT_FILES.entropy),
    lineChart({
      title: 'Controller entropy',
      xLabel: 'controller update',
      yLabel: 'entropy (nats, mean −log π of the samples)',
      series: [{ name: 'entropy', points: at(updates, (r) => r.update, (r) => r.entropy) }],
    }),
  );
  writeFileAtomic(
    join(dir, PLOT_FILES.valid),
    kind === 'image'
      ? lineChart({
          title: 'Shared-weight validation accuracy',
          xLabel: 'child training step',
          yLabel: 'accuracy',
          series: [
            { name: 'report best, whole validation split', points: at(epochs, (r) => r.globalStep, (r) => r.valid.accuracy ?? NaN) },
            { name: 'training minibatches (mean)', points: at(epochs, (r) => r.globalStep, (r) => r.trainAccuracy ?? NaN) },
          ],
        })
      : lineChart({
          title: 'Shared-weight validation perplexity',
          xLabel: 'child training step',
          yLabel: 'perplexity',
          series: [{ name: 'report best, whole validation split', points: at(epochs, (r) => r.globalStep, (r) => r.valid.perplexity ?? NaN) }],
        }),
  );
}
