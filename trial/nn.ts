/*
 * Building blocks of the CNN supernets (trial/supernet/*) and fixed networks (trial/fixed/*):
 * variables with stable names and He-normal init, and layers written as *stages* with hand-made
 * backward passes, which `chain` runs in sequence as one differentiable op. Batch norm, 1×1 and
 * k×k convs, pools, factorized reduction, the micro calibration and the aux head are stages or
 * chains of them; the ops of trial/ops.ts are chains too.
 *
 * Why not tfjs autodiff: the tape clones every tensor a kernel saves for its gradient, and
 * tfjs-wasm's Identity copies, so a micro-supernet step at batch 64 ran out of wasm memory and
 * spent thousands of kernel calls on copies and reshapes. A stage keeps exactly what its gradient
 * needs (Pass.keepForBackward), uncopied. The per-element passes are the ones tfjs-wasm does fast
 * (TFJS-BACKENDS.md): 1×1 convs as matMuls, channel statistics as global average pools,
 * per-channel affine maps as 1×1 depthwise convs (its broadcasting binary ops are ~10× slower).
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import type { StoreTensors } from './store.js';
import { assignValues, initialValues } from './store-tf.js';
import '../common/tf-gradients.js';

/** BN ε and moving-average decay of the reference (ENAS.md hyperparameters: "BN decay 0.9, ε 1e-5"). */
export const BN_EPSILON = 1e-5;
export const BN_DECAY = 0.9;

/**
 * A variable of a model built from stored weights, put on the backend when a pass first reads it
 * (`upload`). A supernet step runs one architecture, which reads a small part of the weights, and
 * uploading all of them was a fifth of a trial's start on wasm (5,228 variables of the micro
 * supernet, ≈45 ms). Until then the stored values stay on the host, where dataSync returns them.
 */
export class DeferredVariable {
  readonly dtype = 'float32' as const;
  private variable?: tf.Variable;

  constructor(
    readonly shape: number[],
    private values: Float32Array,
    readonly trainable: boolean,
    private readonly uploaded: (variable: tf.Variable) => void,
  ) {}

  get size(): number {
    return this.values.length;
  }

  /** The backend variable, created on the first call. */
  upload(): tf.Variable {
    if (!this.variable) {
      const value = tf.tensor(this.values, this.shape);
      this.variable = tf.variable(value, this.trainable);
      value.dispose();
      this.uploaded(this.variable);
    }
    return this.variable;
  }

  dataSync(): Float32Array {
    return this.variable ? (this.variable.dataSync() as Float32Array) : this.values;
  }

  /** Takes `values` (of this variable's size) as its value. */
  replace(values: Float32Array): void {
    if (values.length !== this.values.length) throw new Error(`variable of ${this.values.length} values given ${values.length}`);
    if (this.variable) assignValues(this.variable, values);
    else this.values = values;
  }

  dispose(): void {
    this.variable?.dispose();
  }
}

/** A model variable: on the backend, or deferred until first read. */
export type ModelVariable = tf.Variable | DeferredVariable;

/** `variable` on the backend (a deferred one is uploaded now). */
export const onBackend = (variable: ModelVariable): tf.Variable => (variable instanceof DeferredVariable ? variable.upload() : variable);

/**
 * Every variable of one model under its stable name: the `state` a model exposes. tfjs names
 * variables process-wide, so the tf.Variable keeps an automatic name and ours lives in the map
 * (two models with the same layout can coexist).
 */
export class VariableStore {
  readonly variables = new Map<string, ModelVariable>();
  /** Called with each variable as it reaches the backend: at declaration, or on first read when deferred. */
  onUpload: (name: string, variable: tf.Variable) => void = () => {};

  /**
   * `initScale` multiplies every He-normal standard deviation (1: the reference; trial option
   * --init-scale). `initial` holds stored values to start from instead of the seeded init (a
   * trial that loads the weight store): the init is then never computed, and each variable is
   * a DeferredVariable until a pass reads it. Every variable must find its value there, and the
   * caller checks that nothing there is left over (store-tf.ts `checkStateLayout`).
   */
  constructor(
    readonly rng: Random,
    readonly initScale = 1,
    readonly initial?: StoreTensors,
  ) {}

  /** Declares `name` of `shape`, valued from `initial` when given, else by `init()`. */
  add(name: string, shape: readonly number[], init: () => tf.Tensor, trainable: boolean): ModelVariable {
    if (this.variables.has(name)) throw new Error(`variable ${name} is declared twice`);
    let variable: ModelVariable;
    if (this.initial) {
      const values = initialValues(this.initial, name, shape) as Float32Array;
      variable = new DeferredVariable([...shape], values, trainable, (uploaded) => this.onUpload(name, uploaded));
    } else {
      const value = init();
      variable = tf.variable(value, trainable);
      value.dispose();
      this.onUpload(name, variable);
    }
    this.variables.set(name, variable);
    return variable;
  }
}

/** A name prefix inside a VariableStore; modules declare their variables through it. */
export class Scope {
  constructor(
    readonly store: VariableStore,
    readonly path = '',
  ) {}

  child(name: string | number): Scope {
    return new Scope(this.store, this.path ? `${this.path}/${name}` : String(name));
  }

  private name(leaf: string): string {
    return this.path ? `${this.path}/${leaf}` : leaf;
  }

  /**
   * He-normal (ENAS.md: "He-normal init for convs and FC"), fan-in as Keras computes it on the
   * conceptual filter [kh, kw, c_in, c_out]. Like TF1's `he_normal` it is truncated at 2σ. The
   * micro search child flattens its weights to [num_inputs, k·k·C], which makes Keras use
   * num_inputs as fan-in; that accident is not reproduced.
   */
  heNormal(leaf: string, shape: number[], fanIn: number): ModelVariable {
    const init = () => {
      const stddev = this.store.initScale * Math.sqrt(2 / fanIn);
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const rng = this.store.rng;
      for (let i = 0; i < values.length; i++) {
        let z = rng.normal();
        while (Math.abs(z) > 2) z = rng.normal();
        values[i] = z * stddev;
      }
      return tf.tensor(values, shape);
    };
    return this.store.add(this.name(leaf), shape, init, true);
  }

  filled(leaf: string, shape: number[], value: number, trainable = true): ModelVariable {
    return this.store.add(this.name(leaf), shape, () => tf.fill(shape, value), trainable);
  }
}

/** Per-model constant tensors, created once and kept across steps. */
export class Constants {
  private readonly onesByLength = new Map<number, tf.Tensor1D>();

  ones(length: number): tf.Tensor1D {
    let ones = this.onesByLength.get(length);
    if (!ones) {
      ones = tf.keep(tf.ones([length]) as tf.Tensor1D);
      this.onesByLength.set(length, ones);
    }
    return ones;
  }

  dispose(): void {
    for (const ones of this.onesByLength.values()) ones.dispose();
    this.onesByLength.clear();
  }
}

/**
 * One forward pass: training or evaluation, the randomness of dropout and drop-path, the tensors
 * stages keep for the backward pass, and a memo so that a tensor feeding several ReLU-first
 * consumers (micro ops, the loose-end output) is rectified once.
 */
export class Pass {
  private readonly relus = new Map<tf.Tensor, tf.Tensor4D>();
  private readonly kept: tf.Tensor[] = [];
  /** Tensors created before the pass (the batch) belong to the caller: never kept, never released. */
  private readonly firstTensorId: number;

  constructor(
    readonly training: boolean,
    readonly rng: Random,
    readonly constants: Constants,
  ) {
    const probe = tf.scalar(0);
    this.firstTensorId = probe.id;
    probe.dispose();
  }

  /** Keeps a forward tensor alive for a backward pass (training only), until `release`. */
  keepForBackward<T extends tf.Tensor>(t: T): T {
    if (this.training && t.id >= this.firstTensorId && !t.kept) {
      tf.keep(t);
      this.kept.push(t);
    }
    return t;
  }

  /** How many tensors have been kept so far; with `keptSince`, what one op kept. */
  get keptCount(): number {
    return this.kept.length;
  }

  keptSince(count: number): tf.Tensor[] {
    return this.kept.slice(count);
  }

  /** Frees what the stages kept; call once the gradients are computed. */
  release(): void {
    tf.dispose(this.kept);
    this.kept.length = 0;
  }

  /**
   * Frees intermediate activations nobody needs any more (a finished cell's nodes), except
   * those in `still` and those kept for the backward pass. The tape refers to tensors by id and
   * shape only, so this lowers the peak memory of a step without touching its gradients.
   */
  discard(tensors: readonly tf.Tensor[], still: readonly tf.Tensor[]): void {
    for (const t of tensors) if (!t.kept && !still.includes(t) && t.id >= this.firstTensorId) t.dispose();
  }

  relu(x: tf.Tensor4D): tf.Tensor4D {
    let y = this.relus.get(x);
    if (!y) {
      y = chain([RELU], x, this);
      this.relus.set(x, y);
    }
    return y;
  }

  /**
   * Multiplies each example (`perExample`) or each element by 0 or 1/keep, drawn from the model's
   * seeded generator: dropout before the classifier, drop-path in the final micro network.
   * Identity outside training.
   */
  dropOut<T extends tf.Tensor>(x: T, keep: number, perExample: boolean): T {
    if (!this.training || keep >= 1) return x;
    const shape = perExample ? [x.shape[0]!, ...x.shape.slice(1).map(() => 1)] : x.shape;
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = this.rng.next() < keep ? 1 / keep : 0;
    const mask = this.keepForBackward(tf.tensor(values, shape));
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.mul(args[0] as tf.Tensor, mask),
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, mask),
    }));
    return op(x) as T;
  }
}

/** Runs a kernel directly: inside stages the op-level wrappers would only add checks and casts. */
const kernel = (name: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor4D =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor4D;

/**
 * Per-channel mean of NHWC x, as [C]: average pools (XNNPACK passes over contiguous channels),
 * first over each image's [H, W], then over the B image means. XNNPACK sums a pool window in one
 * float32 accumulator: a single pool over the batch seen as one [B·H, W] image put the mean of
 * data of mean 3 40× further from float64 than the cpu backend does (issue 10; the per-image
 * windows: 4×), for one kernel call less. A [1,m]·[m,C] matMul would make x
 * the weight operand, which tfjs-wasm repacks on every call (≈30 ms at 64×28×28×20, against ≈0.2 ms).
 */
function channelMean(x: tf.Tensor4D): tf.Tensor1D {
  const [b, h, w, c] = x.shape;
  const imageMeans = tf.reshape(kernel('AvgPool', { x }, { filterSize: [h, w], strides: 1, pad: 'valid' }), [1, b, 1, c]);
  return tf.reshape(kernel('AvgPool', { x: imageMeans }, { filterSize: [b, 1], strides: 1, pad: 'valid' }), [c]);
}

/**
 * x·scale + shift per channel, as one 1×1 depthwise convolution with bias. `shift` must own its
 * data as a rank-1 tensor: tfjs-wasm checks the rank the data was created with, so a reshaped
 * view of a [1,1,1,C] tensor is refused.
 */
function channelAffine(x: tf.Tensor4D, scale: tf.Tensor, shift?: tf.Tensor): tf.Tensor4D {
  const filter = tf.reshape(scale, [1, 1, x.shape[3], 1]);
  const inputs: Record<string, tf.Tensor> = shift ? { x, filter, bias: shift } : { x, filter };
  return kernel('FusedDepthwiseConv2D', inputs, { strides: 1, pad: 'valid', dilations: 1, dataFormat: 'NHWC', activation: 'linear' });
}

/** A stage's backward pass: dx, then the gradients of the stage's `params` in order. */
export type Backward = (dy: tf.Tensor4D) => tf.Tensor[];

/** One layer of a chain: a forward pass returning its output and its backward pass. */
export interface Stage {
  readonly params: readonly tf.Variable[];
  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward];
}

/**
 * Runs `stages` in sequence as one differentiable op (tf.customGrad): the tape records one node
 * and no saved copies; the intermediates nobody kept are freed as soon as the forward pass ends.
 * With `inputGradient: false` (the network input) the input's gradient is not computed at all.
 */
export function chain(stages: readonly Stage[], x: tf.Tensor4D, pass: Pass, inputGradient = true): tf.Tensor4D {
  if (!pass.training) return stages.reduce((h, stage) => stage.forward(h, pass)[0], x);
  const params = stages.flatMap((stage) => stage.params);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const backwards: Backward[] = [];
    const input = inputGradient ? (args[0] as tf.Tensor4D) : x;
    const mark = pass.keptCount;
    let h = input;
    for (const stage of stages) {
      const [y, backward] = stage.forward(h, pass);
      backwards.push(backward);
      h = y;
    }
    // What this chain created and kept is needed by its own backward pass only: the ops reading
    // its output come later in the forward pass, so their backward passes run before this one.
    const own = pass.keptSince(mark).filter((t) => t !== input);
    return {
      value: h,
      gradFunc: (dy: tf.Tensor) => {
        // In a tidy: the engine would otherwise hold every intermediate gradient until the whole
        // backward pass ends.
        const grads = tf.tidy(() => {
          const perStage: tf.Tensor[][] = [];
          let g = dy as tf.Tensor4D;
          for (let i = stages.length - 1; i >= 0; i--) {
            const [dx, ...dParams] = backwards[i]!(g);
            perStage[i] = dParams;
            g = dx as tf.Tensor4D;
          }
          return inputGradient ? [g, ...perStage.flat()] : perStage.flat();
        });
        // The engine keeps every gradient until the backward pass ends; this chain's output
        // gradient and its kept activations are done with now.
        tf.dispose([dy, ...own]);
        return grads;
      },
    };
  });
  return (inputGradient ? op(x, ...params) : op(...params)) as tf.Tensor4D;
}

/**
 * The gradient mask of a ReLU from its output y ≥ 0: 1 where y > 0, else 0, which is both step(y)
 * and sign(y). Each backend gets the one that is a single fast kernel there: tfjs-node builds
 * Step from five (IsNan, Greater, Fill, Select, …: 20% of a micro training step), and wasm's Sign
 * is 19× slower than its Step (1M floats: 5.8 against 0.30 ms; 18% of a micro training step).
 */
export function reluMask(y: tf.Tensor): tf.Tensor {
  return tf.getBackend() === 'tensorflow' ? tf.sign(y) : tf.step(y);
}

/** ReLU; keeps its output, from which reluMask gives the gradient mask. */
export const RELU: Stage = {
  params: [],
  forward(x, pass) {
    const y = pass.keepForBackward(tf.relu(x));
    return [y, (dy) => [tf.mul(dy, reluMask(y))]];
  },
};

/** A 1×1 convolution (no bias): one matMul over the pixels. */
export class PointwiseConv implements Stage {
  private readonly weights: ModelVariable;

  constructor(scope: Scope, cIn: number, cOut: number, leaf = 'w') {
    this.weights = scope.heNormal(leaf, [cIn, cOut], cIn);
  }

  get w(): tf.Variable {
    return onBackend(this.weights);
  }

  get params(): readonly tf.Variable[] {
    return [this.w];
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    const [b, h, w, c] = x.shape;
    const weights = this.w as tf.Tensor2D;
    const cOut = weights.shape[1];
    const y = tf.reshape(tf.matMul(tf.reshape(x, [-1, c]), weights), [b, h, w, cOut]) as tf.Tensor4D;
    pass.keepForBackward(x);
    return [
      y,
      (dy) => {
        const dy2 = tf.reshape(dy, [-1, cOut]) as tf.Tensor2D;
        return [tf.reshape(tf.matMul(dy2, weights, false, true), x.shape), tf.matMul(tf.reshape(x, [-1, c]) as tf.Tensor2D, dy2, true, false)];
      },
    ];
  }
}

/** Convolution geometry shared by the k×k and depthwise stages: SAME padding, no dilation. */
interface ConvAttrs {
  strides: number;
  pad: 'same' | 'valid';
  dilations: 1;
  dataFormat: 'NHWC';
}

/** A k×k convolution (no bias). */
export class Conv implements Stage {
  private readonly weights: ModelVariable;
  private readonly attrs: ConvAttrs;

  constructor(scope: Scope, k: number, cIn: number, cOut: number, stride: 1 | 2 = 1, pad: 'same' | 'valid' = 'same') {
    this.weights = scope.heNormal('w', [k, k, cIn, cOut], k * k * cIn);
    this.attrs = { strides: stride, pad, dilations: 1, dataFormat: 'NHWC' };
  }

  get w(): tf.Variable {
    return onBackend(this.weights);
  }

  get params(): readonly tf.Variable[] {
    return [this.w];
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    const filter = this.w;
    const y = kernel('Conv2D', { x, filter }, this.attrs);
    pass.keepForBackward(x);
    return [
      y,
      (dy) => [
        kernel('Conv2DBackpropInput', { dy, filter }, { ...this.attrs, inputShape: x.shape }),
        kernel('Conv2DBackpropFilter', { x, dy }, { ...this.attrs, filterShape: filter.shape }),
      ],
    ];
  }
}

/** A depthwise k×k convolution, channel multiplier 1 (no bias), SAME padding. */
export class DepthwiseConv implements Stage {
  private readonly weights: ModelVariable;
  private readonly attrs: ConvAttrs;

  constructor(scope: Scope, k: number, channels: number, stride: 1 | 2 = 1) {
    this.weights = scope.heNormal('depthwise', [k, k, channels, 1], k * k * channels);
    this.attrs = { strides: stride, pad: 'same', dilations: 1, dataFormat: 'NHWC' };
  }

  get filter(): tf.Variable {
    return onBackend(this.weights);
  }

  get params(): readonly tf.Variable[] {
    return [this.filter];
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    const filter = this.filter;
    const y = kernel('DepthwiseConv2dNative', { x, filter }, this.attrs);
    pass.keepForBackward(x);
    return [
      y,
      (dy) => [
        kernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...this.attrs, inputShape: x.shape }),
        kernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...this.attrs, filterShape: filter.shape }),
      ],
    ];
  }
}

/** Depthwise k×k then pointwise: the stages of a separable convolution. */
export function separableConv(scope: Scope, k: number, cIn: number, cOut: number, stride: 1 | 2 = 1): Stage[] {
  return [new DepthwiseConv(scope, k, cIn, stride), new PointwiseConv(scope, cIn, cOut, 'pointwise')];
}

/** Average or max pooling, no weights. */
export class Pool implements Stage {
  readonly params: readonly tf.Variable[] = [];
  private readonly attrs: { filterSize: number; strides: number; pad: 'same' | 'valid' };

  constructor(
    readonly kind: 'avg' | 'max',
    size: number,
    stride: number,
    pad: 'same' | 'valid',
  ) {
    this.attrs = { filterSize: size, strides: stride, pad };
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    pass.keepForBackward(x);
    if (this.kind === 'avg') return [kernel('AvgPool', { x }, this.attrs), (dy) => [kernel('AvgPoolGrad', { dy, input: x }, this.attrs)]];
    const y = pass.keepForBackward(kernel('MaxPool', { x }, this.attrs));
    return [y, (dy) => [kernel('MaxPoolGrad', { dy, input: x, output: y }, this.attrs)]];
  }
}

export interface BatchNormOptions {
  /**
   * Keep moving statistics for evaluation. Without them every pass normalises with batch
   * statistics, as the micro search child does (ENAS.md §1b).
   */
  movingStats: boolean;
  /** Decay of the moving statistics, if kept. */
  momentum: number;
}

/**
 * Batch norm over NHWC channels. Training passes normalise with batch statistics and, with moving
 * statistics, fold them in (decay `momentum`, Bessel-corrected variance, as TF's
 * fused_batch_norm); evaluation uses the moving statistics if kept, else batch statistics.
 */
export class BatchNorm implements Stage {
  private readonly variables: { gamma: ModelVariable; beta: ModelVariable; movingMean?: ModelVariable; movingVariance?: ModelVariable };

  constructor(
    scope: Scope,
    readonly channels: number,
    readonly options: BatchNormOptions,
  ) {
    const bn = scope.child('bn');
    this.variables = {
      gamma: bn.filled('gamma', [channels], 1),
      beta: bn.filled('beta', [channels], 0),
      ...(options.movingStats && {
        movingMean: bn.filled('moving_mean', [channels], 0, false),
        movingVariance: bn.filled('moving_variance', [channels], 1, false),
      }),
    };
  }

  get gamma(): tf.Variable {
    return onBackend(this.variables.gamma);
  }

  get beta(): tf.Variable {
    return onBackend(this.variables.beta);
  }

  get movingMean(): tf.Variable | undefined {
    return this.variables.movingMean && onBackend(this.variables.movingMean);
  }

  get movingVariance(): tf.Variable | undefined {
    return this.variables.movingVariance && onBackend(this.variables.movingVariance);
  }

  get params(): readonly tf.Variable[] {
    return [this.gamma, this.beta];
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    if (!pass.training && this.movingMean && this.movingVariance) {
      const scale = tf.mul(this.gamma, tf.rsqrt(tf.add(this.movingVariance, BN_EPSILON)));
      return [channelAffine(x, scale, tf.sub(this.beta, tf.mul(this.movingMean, scale))), evaluationOnly];
    }
    const mean = channelMean(x);
    const centered = pass.keepForBackward(channelAffine(x, pass.constants.ones(this.channels), tf.neg(mean)));
    const variance = channelMean(tf.square(centered));
    const rstd = pass.keepForBackward(tf.rsqrt(tf.add(variance, BN_EPSILON)));
    if (pass.training && this.movingMean) this.fold(mean, variance, x.size / this.channels);
    const gamma = this.gamma;
    const y = channelAffine(centered, tf.mul(gamma, rstd), this.beta);
    return [
      y,
      (dy) => {
        // dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)), x̂ = centered·rstd.
        const m = dy.size / this.channels;
        const meanDy = channelMean(dy);
        const meanDyC = channelMean(tf.mul(dy, centered));
        const scale = tf.mul(gamma, rstd);
        const dx = channelAffine(tf.sub(dy, channelAffine(centered, tf.mul(meanDyC, tf.square(rstd)))), scale, tf.neg(tf.mul(scale, meanDy)));
        return [dx, tf.mul(meanDyC, tf.mul(rstd, m)), tf.mul(meanDy, m)];
      },
    ];
  }

  apply(x: tf.Tensor4D, pass: Pass): tf.Tensor4D {
    return chain([this], x, pass);
  }

  /** moving ← decay·moving + (1−decay)·batch, on the host: two [C] vectors, cheaper than ~6 kernels. */
  private fold(mean: tf.Tensor, variance: tf.Tensor, m: number): void {
    const decay = this.options.momentum;
    const bessel = m > 1 ? m / (m - 1) : 1;
    for (const [moving, batch, factor] of [
      [this.movingMean!, mean, 1],
      [this.movingVariance!, variance, bessel],
    ] as const) {
      const old = moving.dataSync();
      const now = batch.dataSync();
      const next = new Float32Array(old.length);
      for (let c = 0; c < old.length; c++) next[c] = decay * old[c]! + (1 - decay) * factor * now[c]!;
      const value = tf.tensor(next, moving.shape);
      moving.assign(value);
      value.dispose();
    }
  }
}

function evaluationOnly(): never {
  throw new Error('internal: backward pass of an evaluation-mode batch norm');
}

/**
 * The two paths of a factorized reduction (ENAS.md §1a): x[:, ::2, ::2]·W1 ‖ x[:, 1::2, 1::2]·W2,
 * the second one-pixel-shifted with zeros beyond an odd border. The even/odd pixels are cut as
 * rank-4 slices of the view [B·H/2, 2, W/2, 2C] (tfjs-wasm slices rank ≤ 4 natively).
 */
class ReductionPaths implements Stage {
  constructor(
    readonly path1: PointwiseConv,
    readonly path2: PointwiseConv,
  ) {}

  get params(): readonly tf.Variable[] {
    return [this.path1.w, this.path2.w];
  }

  forward(x: tf.Tensor4D, pass: Pass): [tf.Tensor4D, Backward] {
    const [b, h, w, c] = x.shape;
    const padded = h % 2 || w % 2 ? tf.pad(x, [[0, 0], [0, h % 2], [0, w % 2], [0, 0]]) : x;
    const [h2, w2] = [Math.ceil(h / 2), Math.ceil(w / 2)];
    const pairs = tf.reshape(padded, [b * h2, 2, w2, 2 * c]);
    const even = pass.keepForBackward(tf.reshape(tf.slice(pairs, [0, 0, 0, 0], [-1, 1, -1, c]), [-1, c]) as tf.Tensor2D);
    const odd = pass.keepForBackward(tf.reshape(tf.slice(pairs, [0, 1, 0, c], [-1, 1, -1, c]), [-1, c]) as tf.Tensor2D);
    const [w1, w2s] = [this.path1.w as tf.Tensor2D, this.path2.w as tf.Tensor2D];
    const half = w1.shape[1];
    const y = tf.reshape(tf.concat([tf.matMul(even, w1), tf.matMul(odd, w2s)], 1), [b, h2, w2, 2 * half]) as tf.Tensor4D;
    return [
      y,
      (dy) => {
        const [d1, d2] = tf.split(tf.reshape(dy, [-1, 2 * half]), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
        const row = (d: tf.Tensor2D, w: tf.Tensor2D) => tf.reshape(tf.matMul(d, w, false, true), [b * h2, 1, w2, c]);
        const dPairs = tf.add(tf.pad(row(d1, w1), [[0, 0], [0, 1], [0, 0], [0, c]]), tf.pad(row(d2, w2s), [[0, 0], [1, 0], [0, 0], [c, 0]]));
        const dPadded = tf.reshape(dPairs, padded.shape);
        return [
          padded === x ? dPadded : tf.slice(dPadded, [0, 0, 0, 0], x.shape),
          tf.matMul(even, d1, true, false),
          tf.matMul(odd, d2, true, false),
        ];
      },
    ];
  }
}

/** Factorized reduction FR(x, C′): the two paths to C′/2 channels each, concatenated → BN (ENAS.md §1a). */
export class FactorizedReduction {
  readonly path1: PointwiseConv;
  readonly path2: PointwiseConv;
  readonly bn: BatchNorm;
  readonly stages: readonly Stage[];

  constructor(scope: Scope, cIn: number, cOut: number, bn: BatchNormOptions) {
    if (cOut % 2) throw new Error(`factorized reduction needs an even channel count, got ${cOut}`);
    this.path1 = new PointwiseConv(scope.child('path1'), cIn, cOut / 2);
    this.path2 = new PointwiseConv(scope.child('path2'), cIn, cOut / 2);
    this.bn = new BatchNorm(scope, cOut, bn);
    this.stages = [new ReductionPaths(this.path1, this.path2), this.bn];
  }

  apply(x: tf.Tensor4D, pass: Pass): tf.Tensor4D {
    return chain(this.stages, x, pass);
  }
}

/** ReLU → 1×1 conv → BN: the micro child's channel calibration and `layer_base` (ENAS.md §1b). */
export class ReluConvBn {
  readonly stages: readonly Stage[];

  constructor(scope: Scope, cIn: number, cOut: number, bn: BatchNormOptions) {
    this.stages = [new PointwiseConv(scope, cIn, cOut), new BatchNorm(scope, cOut, bn)];
  }

  apply(x: tf.Tensor4D, pass: Pass): tf.Tensor4D {
    return chain(this.stages, pass.relu(x), pass);
  }
}

/** Σ of same-shaped tensors as one differentiable op that keeps nothing for its gradient. */
export function sum(tensors: tf.Tensor4D[], pass: Pass): tf.Tensor4D {
  if (tensors.length === 1) return tensors[0]!;
  if (!pass.training) return tf.addN(tensors);
  const n = tensors.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.addN(args.slice(0, n) as tf.Tensor[]),
    // dy itself may go to one input only: the engine frees a gradient once it sums another into
    // it, so every further input needs its own tensor.
    gradFunc: (dy: tf.Tensor) => tensors.map((_, i) => (i === 0 ? dy : tf.clone(dy))),
  }));
  return op(...tensors) as tf.Tensor4D;
}

/** Channel concatenation as one differentiable op that keeps nothing for its gradient. */
export function concatChannels(tensors: tf.Tensor4D[], pass: Pass): tf.Tensor4D {
  if (tensors.length === 1) return tensors[0]!;
  if (!pass.training) return tf.concat(tensors, 3);
  const n = tensors.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.concat(args.slice(0, n) as tf.Tensor4D[], 3),
    gradFunc: (dy: tf.Tensor) =>
      tf.split(
        dy,
        tensors.map((t) => t.shape[3]),
        3,
      ),
  }));
  return op(...tensors) as tf.Tensor4D;
}

/** Static shape of an activation: spatial size and channels. */
export interface FeatureShape {
  height: number;
  width: number;
  channels: number;
}

export const halved = (s: FeatureShape, channels: number): FeatureShape => ({
  height: Math.ceil(s.height / 2),
  width: Math.ceil(s.width / 2),
  channels,
});

/**
 * `_maybe_calibrate_size` of the micro child (ENAS.md §1b): brings the two cell inputs to the
 * same spatial size and C channels. h_{i−2} at twice the size of h_{i−1} → ReLU + FR; otherwise a
 * channel mismatch → ReLU → 1×1 → BN; the same channel fix for h_{i−1}. Decided from static
 * shapes at build time; `null` means the input passes through.
 */
export class Calibration {
  readonly prev: FactorizedReduction | ReluConvBn | null;
  readonly last: ReluConvBn | null;

  constructor(scope: Scope, prev: FeatureShape, last: FeatureShape, channels: number, bn: BatchNormOptions) {
    const spatialMismatch = prev.height !== last.height || prev.width !== last.width;
    if (spatialMismatch && (Math.ceil(prev.height / 2) !== last.height || Math.ceil(prev.width / 2) !== last.width))
      throw new Error(`cell inputs ${prev.height}×${prev.width} and ${last.height}×${last.width} cannot be calibrated`);
    this.prev = spatialMismatch
      ? new FactorizedReduction(scope.child('calibrate_0'), prev.channels, channels, bn)
      : prev.channels !== channels
        ? new ReluConvBn(scope.child('calibrate_0'), prev.channels, channels, bn)
        : null;
    this.last = last.channels !== channels ? new ReluConvBn(scope.child('calibrate_1'), last.channels, channels, bn) : null;
  }

  apply(prev: tf.Tensor4D, last: tf.Tensor4D, pass: Pass): [tf.Tensor4D, tf.Tensor4D] {
    const p =
      this.prev instanceof FactorizedReduction ? this.prev.apply(pass.relu(prev), pass) : (this.prev?.apply(prev, pass) ?? prev);
    return [p, this.last?.apply(last, pass) ?? last];
  }
}

/** Fully connected layer without bias (the reference's classifier and aux FC). */
export class Linear {
  private readonly weights: ModelVariable;

  constructor(scope: Scope, cIn: number, cOut: number) {
    this.weights = scope.heNormal('w', [cIn, cOut], cIn);
  }

  get w(): tf.Variable {
    return onBackend(this.weights);
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, this.w as tf.Tensor2D);
  }
}

/**
 * Global average pooling NHWC → [B, C]: forward as one average pool over the whole map, backward
 * as a nearest-neighbour resize of dy/(H·W). tf.mean transposes first, and the broadcast in its
 * gradient runs as Tile, ≈200 ms at 64×28×28×20 on tfjs-wasm against ≈1 ms for the resize.
 */
export const globalAvgPool = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor4D;
  const [b, h, w, c] = x.shape;
  return {
    value: tf.reshape(kernel('AvgPool', { x }, { filterSize: [h, w], strides: 1, pad: 'valid' }), [b, c]),
    gradFunc: (dy: tf.Tensor) =>
      kernel('ResizeNearestNeighbor', { images: tf.reshape(tf.div(dy, h * w), [b, 1, 1, c]) }, { alignCorners: false, halfPixelCenters: false, size: [h, w] }),
  };
}) as (x: tf.Tensor4D) => tf.Tensor2D;

/**
 * The micro child's auxiliary head (ENAS.md §1b): ReLU → avg-pool 5×5/3 VALID → 1×1 conv 128 →
 * BN → ReLU → conv hw×hw 768 → BN → ReLU → GAP → FC. Its BNs always use batch statistics, as in
 * the reference. The pool window shrinks to the map when the map is smaller than 5×5 (tiny
 * inputs only; CIFAR and Fashion-MNIST sizes are unaffected).
 *
 * Frozen-aux quirk, fixed: the reference filters "aux_head" out of the optimizer's variable list,
 * so its head keeps its random init and only the trunk learns from the aux loss. That reads as an
 * accident of the filter (NASNet and DARTS train their aux heads), so here the head is trained,
 * with L2, like every other layer.
 */
export class AuxHead {
  readonly stages: readonly Stage[];
  readonly fc: Linear;

  constructor(scope: Scope, input: FeatureShape, numClasses: number) {
    const window = Math.min(5, input.height, input.width);
    const pooled = Math.floor((Math.min(input.height, input.width) - window) / 3) + 1;
    const batchStats: BatchNormOptions = { movingStats: false, momentum: BN_DECAY };
    const [proj, conv] = [scope.child('proj'), scope.child('avg_pool')];
    this.stages = [
      new Pool('avg', window, 3, 'valid'),
      new PointwiseConv(proj, input.channels, 128),
      new BatchNorm(proj, 128, batchStats),
      RELU,
      new Conv(conv, pooled, 128, 768),
      new BatchNorm(conv, 768, batchStats),
      RELU,
    ];
    this.fc = new Linear(scope.child('fc'), 768, numClasses);
  }

  apply(x: tf.Tensor4D, pass: Pass): tf.Tensor2D {
    return this.fc.apply(globalAvgPool(chain(this.stages, pass.relu(x), pass)));
  }
}
