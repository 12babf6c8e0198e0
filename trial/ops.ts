/*
 * The one operation registry (the DARTS `OPS` idea): every supernet and fixed network builds
 * its operations from here, keyed by the names in search-spaces/genotype.ts.
 */
import tf = require('@tensorflow/tfjs-core');
import type { MacroOp, MicroOp, RnnActivation } from '../search-spaces/genotype.js';
import {
  BatchNorm,
  chain,
  Conv,
  FactorizedReduction,
  PointwiseConv,
  Pool,
  RELU,
  reluMask,
  separableConv,
  type BatchNormOptions,
  type Pass,
  type Scope,
  type Stage,
} from './nn.js';

/** RNN node activations (ENAS.md §1c). */
export const RNN_ACTIVATION_FNS: Record<RnnActivation, (x: tf.Tensor) => tf.Tensor> = {
  tanh: (x) => tf.tanh(x),
  relu: (x) => tf.relu(x),
  identity: (x) => x,
  sigmoid: (x) => tf.sigmoid(x),
};

/**
 * Backward of each RNN activation, from its output y and the gradient dy of that output, for
 * hand-written backward passes (trial/rnn-cell.ts); every derivative here is a function of y.
 */
export const RNN_ACTIVATION_GRADS: Record<RnnActivation, (y: tf.Tensor, dy: tf.Tensor) => tf.Tensor> = {
  tanh: (y, dy) => tf.mul(dy, tf.sub(1, tf.square(y))),
  relu: (y, dy) => tf.mul(dy, reluMask(y)),
  identity: (_, dy) => dy,
  sigmoid: (y, dy) => tf.mul(dy, tf.mul(y, tf.sub(1, y))),
};


/**
 * How a CNN op is built. Its input already has `channels` channels: the macro layers and the
 * micro cells bring every input to C (factorized reductions, calibration) before an op sees it.
 */
export interface CnnOpSpec {
  /** Where the op declares its variables. */
  scope: Scope;
  channels: number;
  /** 2 only for the fixed micro network's reduction cells, on ops reading a cell input (ENAS.md §1b). */
  stride: 1 | 2;
  /** `search`: a supernet branch; `fixed`: the retrain-time network. Decides the BN statistics. */
  mode: 'search' | 'fixed';
  /** BN moving-average decay (ENAS.md: 0.9). */
  bnMomentum: number;
}

export type CnnOp = (x: tf.Tensor4D, pass: Pass) => tf.Tensor4D;
export type CnnOpFactory = (spec: CnnOpSpec) => CnnOp;

/** Macro BNs keep moving statistics in both modes: the macro reward evaluates with them (ENAS.md §2, §7). */
const macroBn = (spec: CnnOpSpec): BatchNormOptions => ({ movingStats: true, momentum: spec.bnMomentum });

/**
 * Micro search BNs normalise with batch statistics in every pass, as the reference forces
 * is_training=True in all search graphs (ENAS.md §1b); the fixed network evaluates with moving ones.
 */
const microBn = (spec: CnnOpSpec): BatchNormOptions => ({ movingStats: spec.mode === 'fixed', momentum: spec.bnMomentum });

/** Every macro branch starts with 1×1 conv → BN → ReLU (ENAS.md §1a); `body` follows. */
function macroBranch(spec: CnnOpSpec, body: (scope: Scope) => Stage[]): CnnOp {
  if (spec.stride !== 1) throw new Error('macro ops run at stride 1; the network reduces with factorized reductions');
  const C = spec.channels;
  const input = spec.scope.child('inp_conv');
  const stages = [new PointwiseConv(input, C, C), new BatchNorm(input, C, macroBn(spec)), RELU, ...body(spec.scope.child('out_conv'))];
  return (x, pass) => chain(stages, x, pass);
}

/** Macro conv/sep branch tail: (k×k conv | depthwise k×k + pointwise) → BN → ReLU. */
function macroConv(spec: CnnOpSpec, k: number, separable: boolean): CnnOp {
  const C = spec.channels;
  return macroBranch(spec, (scope) => [
    ...(separable ? separableConv(scope, k, C, C) : [new Conv(scope, k, C, C)]),
    new BatchNorm(scope, C, macroBn(spec)),
    RELU,
  ]);
}

/** Macro pool branch tail: 3×3 pool, stride 1, SAME, no BN. */
const macroPool = (spec: CnnOpSpec, kind: 'avg' | 'max'): CnnOp => macroBranch(spec, () => [new Pool(kind, 3, 1, 'same')]);

/** The macro ops in MACRO_OPS order, each built exactly as the reference search child does (ENAS.md §1a). */
export const MACRO_OP_FACTORIES: Record<MacroOp, CnnOpFactory> = {
  conv3x3: (spec) => macroConv(spec, 3, false),
  sepconv3x3: (spec) => macroConv(spec, 3, true),
  conv5x5: (spec) => macroConv(spec, 5, false),
  sepconv5x5: (spec) => macroConv(spec, 5, true),
  avgpool3x3: (spec) => macroPool(spec, 'avg'),
  maxpool3x3: (spec) => macroPool(spec, 'max'),
};

/**
 * Micro sep conv: 2× [ReLU → depthwise k×k + pointwise → BN]; the stride goes to the first
 * depthwise. The first ReLU is the pass's shared one (other ops may read the same node).
 */
function microSep(spec: CnnOpSpec, k: number): CnnOp {
  const C = spec.channels;
  const stack = (i: number): Stage[] => {
    const scope = spec.scope.child(`stack_${i}`);
    return [...separableConv(scope, k, C, C, i === 0 ? spec.stride : 1), new BatchNorm(scope, C, microBn(spec))];
  };
  const stages = [...stack(0), RELU, ...stack(1)];
  return (x, pass) => chain(stages, pass.relu(x), pass);
}

function microPool(spec: CnnOpSpec, kind: 'avg' | 'max'): CnnOp {
  const stages = [new Pool(kind, 3, spec.stride, 'same')];
  return (x, pass) => chain(stages, x, pass);
}

/** Identity; at stride 2 (fixed reduction cells) a factorized reduction, as the reference final child. */
function microIdentity(spec: CnnOpSpec): CnnOp {
  if (spec.stride === 1) return (x) => x;
  const reduce = new FactorizedReduction(spec.scope, spec.channels, spec.channels, microBn(spec));
  return (x, pass) => reduce.apply(x, pass);
}

/** The micro ops in MICRO_OPS order (ENAS.md §1b): pools 3×3 SAME without BN, as the reference. */
export const MICRO_OP_FACTORIES: Record<MicroOp, CnnOpFactory> = {
  sepconv3x3: (spec) => microSep(spec, 3),
  sepconv5x5: (spec) => microSep(spec, 5),
  avgpool3x3: (spec) => microPool(spec, 'avg'),
  maxpool3x3: (spec) => microPool(spec, 'max'),
  identity: microIdentity,
};
