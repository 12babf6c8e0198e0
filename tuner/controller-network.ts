/*
 * The ENAS controller's shared machinery (ENAS.md §2 "Common mechanics"): the bias-free LSTM,
 * attention over anchors, the logit transform, and the Rollout through which a space's walk
 * (tuner/controller-{macro,micro,rnn,nb201}.ts) settles each token.
 *
 * One walk serves both directions. `propose` runs it with a SamplingRollout, which samples one
 * sequence with the seeded RNG. An update runs it with a TeacherRollout, which forces a batch of
 * observed sequences and builds the loss terms. Sampling and the trained log-probabilities
 * therefore cannot disagree. Every tensor carries the batch as its first axis (1 when sampling).
 */
import tf = require('@tensorflow/tfjs-core');
import type { Random } from '../common/random.js';

/** A 2-D parameter; initialised U(±0.1) as in the reference (ENAS.md §2) unless `init` is given. */
export interface ParamSpec {
  shape: [number, number];
  init?: Float32Array;
}

/**
 * Entropy of one decision, used only for the reward bonus (a number, so no gradient). Macro and
 * rnn use −p·log p of the sampled token; micro uses the full categorical entropy (ENAS.md §2,
 * Objective).
 */
export type EntropyKind = 'sampled' | 'full';

/**
 * The parameters every attention controller has (ENAS.md §2): a bias-free LSTM, the start input
 * g_emb, an embedding and a softmax head over `choices` options, and the attention W1, W2, v.
 */
export function attentionControllerParams(H: number, choices: number): Record<string, ParamSpec> {
  return {
    lstm: { shape: [2 * H, 4 * H] },
    g_emb: { shape: [1, H] },
    emb: { shape: [choices, H] },
    soft: { shape: [H, choices] },
    attn_1: { shape: [H, H] },
    attn_2: { shape: [H, H] },
    attn_v: { shape: [H, 1] },
  };
}

/** A space's controller: its parameters and its walk through the tokens in the reference's sampling order. */
export interface SpacePolicy {
  readonly params: Record<string, ParamSpec>;
  readonly entropy: EntropyKind;
  walk(net: ControllerNet, rollout: Rollout): void;
}

export interface LstmState {
  c: tf.Tensor2D;
  h: tf.Tensor2D;
}

/** Logit transform settings (ENAS.md §2): l/T when T is set, then c·tanh(l). */
export interface LogitTransform {
  temperature: number | null;
  tanhConstant: number;
}

/** Rows of one-hot vectors (or any per-row weights) as a constant tensor [rows, width]. */
function rowsTensor(rows: readonly (readonly number[])[], width: number): tf.Tensor2D {
  const data = new Float32Array(rows.length * width);
  rows.forEach((row, r) => data.set(row, r * width));
  return tf.tensor2d(data, [rows.length, width]);
}

const oneHot = (index: number, width: number): number[] => Array.from({ length: width }, (_, i) => (i === index ? 1 : 0));

/** The parameters as tensors plus the operations every space's walk is built from. */
export class ControllerNet {
  constructor(
    private readonly variables: ReadonlyMap<string, tf.Variable>,
    private readonly transform: LogitTransform,
    readonly hidden: number,
  ) {}

  param(name: string): tf.Tensor2D {
    const v = this.variables.get(name);
    if (!v) throw new Error(`controller parameter "${name}" does not exist`);
    return v as tf.Tensor2D;
  }

  /** The learned start input g_emb, one row per sequence. */
  start(batch: number): tf.Tensor2D {
    return tf.add(tf.zeros([batch, this.hidden]), this.param('g_emb'));
  }

  /** Embedding rows of the chosen tokens, one per sequence (a one-hot product: gather has no wasm gradient). */
  embed(name: string, tokens: readonly number[]): tf.Tensor2D {
    const table = this.param(name);
    return tf.matMul(rowsTensor(tokens.map((t) => oneHot(t, table.shape[0])), table.shape[0]), table);
  }

  zeros(batch: number): tf.Tensor2D {
    return tf.zeros([batch, this.hidden]);
  }

  zeroState(batch: number): LstmState {
    return { c: this.zeros(batch), h: this.zeros(batch) };
  }

  /** One step of the reference LSTM: no bias, `[x, h]·W` with W 2H×4H, gates i, f, o, g (ENAS.md §2). */
  lstm(x: tf.Tensor2D, state: LstmState): LstmState {
    const ifog = tf.matMul(tf.concat([x, state.h], 1), this.param('lstm'));
    const [i, f, o, g] = tf.split(ifog, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const c = tf.add<tf.Tensor2D>(tf.mul(tf.sigmoid(i), tf.tanh(g)), tf.mul(tf.sigmoid(f), state.c));
    return { c, h: tf.mul(tf.sigmoid(o), tf.tanh(c)) };
  }

  /** l/T (if T is set), then c·tanh(l); micro ops pass c/op_tanh_reduce as `tanhConstant`. */
  squash(logits: tf.Tensor2D, tanhConstant = this.transform.tanhConstant): tf.Tensor2D {
    const scaled = this.transform.temperature === null ? logits : tf.div(logits, this.transform.temperature);
    return tf.mul(tf.tanh(scaled), tanhConstant);
  }
}

/**
 * The anchors a decision attends to, one per earlier layer or node, per sequence. W1·a is computed
 * once, when an anchor is added (ENAS.md §2).
 */
export class Anchors {
  private readonly values: tf.Tensor3D[] = [];
  private readonly projected: tf.Tensor3D[] = [];

  constructor(private readonly net: ControllerNet) {}

  get count(): number {
    return this.values.length;
  }

  /**
   * Adds an anchor made from the LSTM output `h`. `value` is what `mix` returns for it; it is `h`
   * except for the micro cell inputs, whose anchor vectors are zeros (ENAS.md §2).
   */
  add(h: tf.Tensor2D, value: tf.Tensor2D = h): void {
    const [batch, hidden] = h.shape;
    this.values.push(tf.reshape(value, [batch, 1, hidden]));
    this.projected.push(tf.reshape(tf.matMul(h, this.net.param('attn_1')), [batch, 1, hidden]));
  }

  /** Scores vᵀ·tanh(W1·a_j + W2·h) over all anchors, as [batch, anchors]. */
  attend(h: tf.Tensor2D): tf.Tensor2D {
    const [batch, hidden] = h.shape;
    const query = tf.reshape(tf.matMul(h, this.net.param('attn_2')), [batch, 1, hidden]);
    const hiddenScores = tf.tanh(tf.add(tf.concat(this.projected, 1), query));
    const scores = tf.matMul(tf.reshape(hiddenScores, [batch * this.count, hidden]), this.net.param('attn_v'));
    return tf.reshape(scores, [batch, this.count]);
  }

  /** Σ_j weights[b][j]·a_j per sequence b, as [batch, hidden]. */
  mix(weights: readonly (readonly number[])[]): tf.Tensor2D {
    const batch = weights.length;
    const w = tf.reshape(rowsTensor(weights, this.count), [batch, 1, this.count]);
    const mixed = tf.matMul(w, tf.concat(this.values, 1));
    return tf.reshape(mixed, [batch, this.net.hidden]);
  }

  /** The chosen anchor of each sequence (one-hot weights, scaled per sequence by `scale`). */
  select(indices: readonly number[], scale: (index: number) => number = () => 1): tf.Tensor2D {
    return this.mix(indices.map((index) => oneHot(index, this.count).map((w) => w * scale(index))));
  }
}

/** How a walk settles its tokens: sampled (propose) or forced (update). */
export interface Rollout {
  /** Sequences walked at once: 1 when sampling. */
  readonly batchSize: number;
  /**
   * Settles, for every sequence b, the tokens at `positions` (indices in `decisions(spec)` order).
   * `logits` is [batch·positions, choices], sequence-major; its rows are independent decisions.
   * Returns tokens[b][p].
   */
  choose(positions: readonly number[], logits: tf.Tensor2D): number[][];
  /** Adds a per-sequence penalty [batch] to the loss (macro skip KL). It is only evaluated when a loss is built. */
  penalize(term: () => tf.Tensor1D): void;
}

/** One token per sequence at `position`, from logits [batch, choices]. */
export function chooseEach(rollout: Rollout, position: number, logits: tf.Tensor2D): number[] {
  return rollout.choose([position], logits).map((tokens) => tokens[0]!);
}

/** Samples one sequence with the seeded RNG: from softmax(logits), or uniformly for the random-search ablation. */
export class SamplingRollout implements Rollout {
  readonly batchSize = 1;
  readonly tokens: number[];

  constructor(
    length: number,
    private readonly rng: Random,
    private readonly uniform: boolean,
  ) {
    this.tokens = new Array<number>(length).fill(-1);
  }

  choose(positions: readonly number[], logits: tf.Tensor2D): number[][] {
    const choices = logits.shape[1];
    const values = this.uniform ? null : logits.dataSync();
    const tokens = positions.map((position, r) => {
      let token: number;
      if (values) {
        const row = values.subarray(r * choices, (r + 1) * choices);
        const max = Math.max(...row);
        token = this.rng.categorical(Array.from(row, (l) => Math.exp(l - max)));
      } else {
        token = this.rng.int(choices);
      }
      this.tokens[position] = token;
      return token;
    });
    return [tokens];
  }

  penalize(): void {}
}

/** Forces a batch of token sequences and collects, per sequence, Σ_t −log π(a_t), the entropy and the penalties. */
export class TeacherRollout implements Rollout {
  readonly batchSize: number;
  private readonly crossEntropies: tf.Tensor1D[] = [];
  private readonly entropies: tf.Tensor1D[] = [];
  private readonly penalties: tf.Tensor1D[] = [];

  constructor(
    private readonly sequences: readonly (readonly number[])[],
    private readonly entropyKind: EntropyKind,
  ) {
    this.batchSize = sequences.length;
  }

  choose(positions: readonly number[], logits: tf.Tensor2D): number[][] {
    const choices = logits.shape[1];
    const chosen = this.sequences.map((tokens) => positions.map((position) => tokens[position]!));
    const perSequence = (rows: tf.Tensor1D) => tf.sum(tf.reshape(rows, [this.batchSize, positions.length]), 1) as tf.Tensor1D;
    const mask = rowsTensor(
      chosen.flatMap((tokens) => tokens.map((token) => oneHot(token, choices))),
      choices,
    );
    const logProbs = tf.logSoftmax(logits);
    // A one-hot product instead of gather, whose gradient kernel is missing on wasm.
    const rowCrossEntropy = tf.neg(tf.sum(tf.mul(logProbs, mask), 1)) as tf.Tensor1D;
    this.crossEntropies.push(perSequence(rowCrossEntropy));
    const rowEntropy =
      this.entropyKind === 'sampled'
        ? tf.mul(rowCrossEntropy, tf.exp(tf.neg(rowCrossEntropy)))
        : tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), 1));
    this.entropies.push(perSequence(rowEntropy as tf.Tensor1D));
    return chosen;
  }

  penalize(term: () => tf.Tensor1D): void {
    this.penalties.push(term());
  }

  /** Σ_t CE_t = −log π(tokens), per sequence [batch]. */
  crossEntropy(): tf.Tensor1D {
    return tf.addN(this.crossEntropies);
  }

  /** Entropy bonus per sequence [batch]. */
  entropy(): tf.Tensor1D {
    return tf.addN(this.entropies);
  }

  /** Mean of the penalty terms per sequence [batch] (the reference averages the skip KL over layers, ENAS.md §2), or null. */
  penalty(): tf.Tensor1D | null {
    return this.penalties.length ? tf.div(tf.addN(this.penalties), this.penalties.length) : null;
  }
}
