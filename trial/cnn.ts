/*
 * What the four CNN models (trial/supernet/{macro,micro}.ts, trial/fixed/{macro,micro}.ts) share:
 * the TrainableModel training and evaluation loop, the reference layouts (where the macro network
 * reduces, which micro cells reduce), and genotype checks.
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../common/random.js';
import { MICRO_OPS, type Genotype, type MacroGenotype, type MicroNode } from '../search-spaces/genotype.js';
import type { Batch, StateTensor, StepStats, TrainableModel } from './model.js';
import { Constants, onBackend, Pass, Scope, VariableStore } from './nn.js';
import { NesterovMomentum } from './optim.js';
import type { StoreTensors } from './store.js';

export interface ForwardResult {
  logits: tf.Tensor2D;
  /** Aux-head logits; training passes of networks with an aux head only. */
  auxLogits?: tf.Tensor2D;
}

/** What every CNN model here configures: where the data comes from and how it learns. */
export interface ClassifierConfig {
  /** Input [H, W, C]. */
  inputShape: [number, number, number];
  numClasses: number;
  /** L2 weight λ of the loss λ·Σw² (ENAS.md "Loss convention"). */
  l2: number;
  /** Seed of the weight init, dropout and drop-path. */
  seed: number;
  /** Multiplies the He-normal init's standard deviation (trial option --init-scale); unset: 1, the reference. */
  initScale?: number;
  /**
   * Global-norm gradient clipping bound (trial option --grad-clip); unset: none, as the reference
   * runs (its child_grad_bound 5.0 is a no-op, ENAS.md §3).
   */
  gradClip?: number;
  /** Stored weights (the whole state, optimizer slots included) to start from instead of the seeded init. */
  initialState?: StoreTensors;
}

/** The micro layout both micro networks configure (ENAS.md §1b). */
export interface MicroLayoutConfig extends ClassifierConfig {
  /** C of the first stage; ×2 at each reduction cell. */
  channels: number;
  /** num_layers: the network has num_layers + 2 cells. */
  layers: number;
  /** Keep-probability of the dropout before the classifier. */
  keepProb: number;
  /** Aux head after the cell following the last reduction (training only). */
  auxHead: boolean;
  /** Weight of the aux cross-entropy in the loss. */
  auxWeight: number;
}

/**
 * The TrainableModel loop shared by the four CNN models: cross-entropy (+ aux weight · aux CE),
 * one Nesterov step over the variables that received a gradient, loss and accuracy read back
 * with a single dataSync. Subclasses declare their variables in the constructor through
 * `this.root`, then call `this.seal()`.
 */
export abstract class ImageClassifier<G extends Genotype> implements TrainableModel<G> {
  protected readonly store: VariableStore;
  protected readonly root: Scope;
  protected readonly rng: Random;
  private readonly constants = new Constants();
  private readonly optimizer: NesterovMomentum;
  private readonly stateMap = new Map<string, StateTensor>();
  /** The trainable variables on the backend (deferred ones join as passes read them). */
  private readonly trainables: tf.Variable[] = [];
  /** State name of each variable on the backend, by tf.Variable name. */
  private readonly stateNames = new Map<string, string>();

  private readonly gradClip?: number;

  protected constructor(
    config: ClassifierConfig,
    private readonly auxWeight: number,
  ) {
    this.gradClip = config.gradClip;
    const initRandom = new Random(config.seed);
    // Split off first, so dropout and drop-path are the same whether or not the init runs.
    this.rng = initRandom.split();
    this.store = new VariableStore(initRandom, config.initScale, config.initialState);
    this.store.onUpload = (name, variable) => {
      this.stateNames.set(variable.name, name);
      if (variable.trainable) this.trainables.push(variable);
    };
    this.root = new Scope(this.store);
    this.optimizer = new NesterovMomentum({ l2: config.l2 });
  }

  get state(): ReadonlyMap<string, StateTensor> {
    return this.stateMap;
  }

  get random(): Random {
    return this.rng;
  }

  /** Adds the optimizer slots; the state is complete afterwards. */
  protected seal(): void {
    for (const [name, variable] of this.store.variables) this.stateMap.set(name, variable);
    for (const [name, slot] of this.optimizer.addSlots(this.store.variables, this.store.initial)) this.stateMap.set(name, slot);
  }

  protected abstract forward(g: G, x: tf.Tensor4D, pass: Pass): ForwardResult;

  trainStep(g: G, batch: Batch, lr: number): StepStats {
    const { grads, stats } = this.computeGradients(g, batch);
    this.applyGradients(grads, lr);
    return stats;
  }

  /**
   * The forward and backward half of `trainStep`: the loss gradients (mean over `batch`) of the
   * variables that received one, keyed by state name, read back to the host. Batch-norm moving
   * statistics (and the fixed micro network's step counter) are updated as in `trainStep`; the
   * weights and optimizer slots are not. Data parallelism (trial/parallel.ts) averages these
   * over shards and hands the mean to `applyGradients` on every replica.
   */
  computeGradients(g: G, batch: Batch): { grads: Map<string, Float32Array>; stats: StepStats } {
    const pass = new Pass(true, this.rng, this.constants);
    let stats: tf.Tensor | undefined;
    // The engine asserts a non-empty list of variables before the pass runs.
    if (this.trainables.length === 0) this.uploadOneTrainable();
    // Deferred variables that this pass reads first are uploaded during it and join
    // `this.trainables`, the list differentiated by: the engine reads it after running the pass
    // (tf.variableGrads would copy it before). A test holds a deferred model's first step to an
    // uploaded one's.
    const { value, grads } = tf.engine().gradients(
      () => {
        const { logits, auxLogits } = this.forward(g, batch.x as tf.Tensor4D, pass);
        const labels = tf.oneHot(batch.y as tf.Tensor1D, logits.shape[1]);
        const ce = crossEntropy(logits, labels);
        stats = tf.keep(tf.stack([ce, accuracy(logits, batch.y)]));
        return auxLogits ? tf.add(ce, tf.mul(crossEntropy(auxLogits, labels), this.auxWeight)) : ce;
      },
      this.trainables,
      undefined,
      true,
    );
    pass.release();
    const host = new Map<string, Float32Array>();
    this.trainables.forEach((variable, i) => {
      const grad = grads[i];
      if (grad) host.set(this.stateNames.get(variable.name)!, grad.dataSync() as Float32Array);
    });
    value.dispose();
    tf.dispose(grads.filter((grad) => grad));
    const [loss, acc] = stats!.dataSync();
    stats!.dispose();
    return { grads: host, stats: { loss: loss!, accuracy: acc! } };
  }

  /**
   * The update half of `trainStep`: one Nesterov step of exactly the variables in `grads`
   * (keyed by state name, as `computeGradients` returns them).
   */
  applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    // Only the variables of the sampled subgraph have a gradient, so only they move: unlike the
    // TF reference, where L2 and momentum also update every unchosen shared weight each step.
    const byName = [...grads];
    this.optimizer.apply(this.gradClip === undefined ? byName : clipGlobalNorm(byName, this.gradClip), lr);
  }

  evaluate(g: G, batch: Batch): StepStats {
    const pass = new Pass(false, this.rng, this.constants);
    const stats = tf.tidy(() => {
      const { logits } = this.forward(g, batch.x as tf.Tensor4D, pass);
      const ce = crossEntropy(logits, tf.oneHot(batch.y as tf.Tensor1D, logits.shape[1]));
      return tf.stack([ce, accuracy(logits, batch.y)]);
    });
    const [loss, acc] = stats.dataSync();
    stats.dispose();
    return { loss: loss!, accuracy: acc! };
  }

  /** Class scores of `x` under architecture `g`, as `evaluate` computes them (no dropout, no aux head). */
  logits(g: G, x: tf.Tensor4D): tf.Tensor2D {
    const pass = new Pass(false, this.rng, this.constants);
    return tf.tidy(() => this.forward(g, x, pass).logits);
  }

  /** Uploads the first trainable variable declared. */
  private uploadOneTrainable(): void {
    const first = [...this.store.variables.values()].find((variable) => variable.trainable);
    if (!first) throw new Error('internal: a model without trainable variables');
    onBackend(first);
  }

  dispose(): void {
    for (const variable of this.stateMap.values()) variable.dispose();
    this.stateMap.clear();
    this.store.variables.clear();
    this.constants.dispose();
  }
}

/** The gradients scaled by bound/‖g‖ when their global L2 norm ‖g‖ exceeds `bound` (new arrays; the inputs stay as they are). */
export function clipGlobalNorm(grads: readonly [string, Float32Array][], bound: number): [string, Float32Array][] {
  let squares = 0;
  for (const [, g] of grads) for (let i = 0; i < g.length; i++) squares += g[i]! * g[i]!;
  const norm = Math.sqrt(squares);
  if (norm <= bound) return [...grads];
  const factor = bound / norm;
  return grads.map(([key, g]) => [key, g.map((v) => v * factor)]);
}

/** Mean softmax cross-entropy over the batch, with its gradient (softmax − labels)/B as one customGrad. */
function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor): tf.Scalar {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, onehot] = args as [tf.Tensor2D, tf.Tensor2D];
    const logProbs = tf.logSoftmax(z);
    (args[2] as tf.GradSaveFunc)([logProbs, onehot]);
    return {
      value: tf.neg(tf.div(tf.sum(tf.mul(onehot, logProbs)), z.shape[0])) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [lp, y] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.mul(tf.sub(tf.exp(lp), y), tf.div(dy, lp.shape[0])), tf.zerosLike(y)];
      },
    };
  });
  return op(logits, labels) as tf.Scalar;
}

function accuracy(logits: tf.Tensor2D, labels: tf.Tensor): tf.Scalar {
  return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'float32'));
}

/** Macro layers after which every tensor of the history is reduced: {L//3 − 1, 2L//3 − 1} (ENAS.md §1a). */
export function macroPoolLayers(layers: number): number[] {
  return [...new Set([Math.floor(layers / 3) - 1, Math.floor((2 * layers) / 3) - 1])].filter((i) => i >= 0);
}

/** Throws unless `g` has `layers` layers and layer i has i skip bits. */
export function checkMacroGenotype(g: MacroGenotype, layers: number): void {
  if (g.layers.length !== layers) throw new Error(`macro genotype has ${g.layers.length} layers, the network ${layers}`);
  g.layers.forEach((layer, i) => {
    if (layer.skips.length !== i) throw new Error(`macro layer ${i} has ${layer.skips.length} skip bits, expected ${i}`);
  });
}

/** Throws unless `arc` has `nodes` nodes, each reading earlier nodes with known ops. */
export function checkMicroArc(arc: readonly MicroNode[], nodes: number): void {
  if (arc.length !== nodes) throw new Error(`micro cell has ${arc.length} nodes, the network ${nodes}`);
  arc.forEach((node, b) => {
    for (const k of [0, 1]) {
      const input = node.inputs[k]!;
      if (!Number.isInteger(input) || input < 0 || input > b + 1)
        throw new Error(`micro node ${b + 2} reads node ${input}, expected 0…${b + 1}`);
      if (!MICRO_OPS.includes(node.ops[k]!)) throw new Error(`micro node ${b + 2}: unknown op ${node.ops[k]}`);
    }
  });
}

/** Micro reduction cells among the num_layers + 2 cells: {n, 2n + 1}, n = num_layers//3 (ENAS.md §1b). */
export function microReductionCells(layers: number): number[] {
  const n = Math.floor(layers / 3);
  return [n, 2 * n + 1];
}

/** A value computed on first use, so a pass builds only what the sampled architecture reads. */
export function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}
