/*
 * Language-model minibatches as in the standard PTB pipeline the reference uses: the token stream
 * is cut into B rows of L = ⌊N/B⌋ consecutive tokens (the remainder dropped), and window i is
 * columns i·T .. i·T+T−1 as input and the same shifted by one as target. Training walks the
 * windows in order so the model can carry its hidden state from one to the next; an epoch has
 * ⌊(L−1)/T⌋ windows (PTB train, B=20, T=35: 1327). Rewards use one random window (ENAS.md §2).
 */
import tf = require('@tensorflow/tfjs-core');
import type { Random } from '../../common/random.js';
import type { Batch } from '../model.js';
import { advance, checkPosition, type BatcherPosition } from './position.js';

/** A text batch before it becomes tensors: x and y [B,T] token ids, y[b,t] = the token after x[b,t]. */
export interface HostTextBatch {
  x: Int32Array;
  y: Int32Array;
  shape: [number, number];
}

export class TextBatcher {
  /** Tokens per row. */
  readonly rowLength: number;
  readonly windowsPerEpoch: number;
  private at: BatcherPosition = { epoch: 0, position: 0 };

  constructor(
    private readonly tokens: Int32Array,
    readonly batchSize: number,
    readonly bptt: number,
  ) {
    for (const [name, v] of [['batchSize', batchSize], ['bptt', bptt]] as const)
      if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`${name} ${v} must be a positive integer`);
    this.rowLength = Math.floor(tokens.length / batchSize);
    this.windowsPerEpoch = Math.floor((this.rowLength - 1) / bptt);
    if (this.windowsPerEpoch < 1)
      throw new RangeError(`${tokens.length} tokens in ${batchSize} rows are too few for one window of ${bptt}+1`);
  }

  get epoch(): number {
    return this.at.epoch;
  }

  /** Index of the next window; 0 means a new epoch, where the model should zero its hidden state. */
  get position(): number {
    return this.at.position;
  }

  get state(): BatcherPosition {
    return { ...this.at };
  }

  seek(at: BatcherPosition): void {
    this.at = checkPosition(at, this.windowsPerEpoch);
  }

  /** Window `i` (0 ≤ i < windowsPerEpoch) as typed arrays. */
  windowHost(i: number): HostTextBatch {
    if (!(Number.isInteger(i) && i >= 0 && i < this.windowsPerEpoch))
      throw new RangeError(`window ${i} is outside 0..${this.windowsPerEpoch - 1}`);
    const { batchSize: B, bptt: T, rowLength: L } = this;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const from = b * L + i * T;
      x.set(this.tokens.subarray(from, from + T), b * T);
      y.set(this.tokens.subarray(from + 1, from + T + 1), b * T);
    }
    return { x, y, shape: [B, T] };
  }

  /** Window `i` as int32 tensors [B,T]; the caller disposes them. */
  window(i: number): Batch {
    const host = this.windowHost(i);
    return { x: tf.tensor2d(host.x, host.shape, 'int32'), y: tf.tensor2d(host.y, host.shape, 'int32') };
  }

  /** The next training window in order; advances, rolling over into the next epoch. */
  next(): Batch {
    const i = this.at.position;
    this.at = advance(this.at, this.windowsPerEpoch);
    return this.window(i);
  }

  /** A uniformly chosen window, for one reward sample (ENAS.md §2); the caller owns and checkpoints `rng`. */
  randomWindow(rng: Random): Batch {
    return this.window(rng.int(this.windowsPerEpoch));
  }
}
