/*
 * The macro space's shared-weight supernet (ENAS.md §1a, search mode): every layer holds all six
 * branches, a training step runs only the sampled branch per layer and the sampled skips, so
 * only their weights get a gradient. The trial trains it with `trainStep` on a fresh arc per
 * batch and scores arcs with `evaluate` (moving-average BN, as the reference's reward graph).
 *
 * One consequence differs from the reference: its graph computes every branch each step (only
 * the selection is conditional), so every branch's BN moving statistics follow every batch. Here
 * a branch's statistics move only on the steps that sample it, and a factorized reduction's only
 * when a later layer reads its tensor.
 *
 * `weightSharing: 'per-node'` (a deviation, NNI's legacy ENAS example) gives each pool point one
 * factorized reduction for every tensor of the history instead of one per tensor.
 */
import tf = require('@tensorflow/tfjs-core');
import { MACRO_OPS, type MacroGenotype, type MacroOp } from '../../search-spaces/genotype.js';
import { checkMacroGenotype, ImageClassifier, lazy, macroPoolLayers, type ClassifierConfig, type ForwardResult } from '../cnn.js';
import { BatchNorm, BN_DECAY, chain, Conv, FactorizedReduction, globalAvgPool, Linear, sum, type BatchNormOptions, type Pass, type Stage } from '../nn.js';
import { MACRO_OP_FACTORIES, type CnnOp } from '../ops.js';
import type { WeightSharing } from '../options.js';

export interface MacroSupernetConfig extends ClassifierConfig {
  /** C, constant through the network in search mode. */
  channels: number;
  /** L: layers, each one op plus skips from all earlier layers. */
  layers: number;
  /** Keep-probability of the dropout before the classifier. */
  keepProb: number;
  /** BN moving-average decay. */
  bnMomentum: number;
  weightSharing: WeightSharing;
}

/** The reference `macro_search` column (ENAS.md hyperparameter table), on CIFAR-10 shapes. */
export const MACRO_SEARCH_DEFAULTS: MacroSupernetConfig = {
  inputShape: [32, 32, 3],
  numClasses: 10,
  channels: 36,
  layers: 12,
  keepProb: 0.9,
  l2: 2.5e-4,
  bnMomentum: BN_DECAY,
  seed: 0,
  weightSharing: 'per-input',
};

interface SearchLayer {
  ops: Record<MacroOp, CnnOp>;
  /** BN over op output + selected skips; layer 0 has no skips and no BN. */
  skipBn?: BatchNorm;
}

export class MacroSupernet extends ImageClassifier<MacroGenotype> {
  readonly config: MacroSupernetConfig;
  private readonly stem: Stage[];
  private readonly layers: SearchLayer[];
  /** Pool layer → the FR of each history tensor [stem, out_0 … out_i]: its own (per-input) or one for all (per-node). */
  private readonly reductions = new Map<number, FactorizedReduction[]>();
  private readonly classifier: Linear;

  constructor(config: Partial<MacroSupernetConfig> = {}) {
    const c: MacroSupernetConfig = { ...MACRO_SEARCH_DEFAULTS, ...config };
    super(c, 0);
    this.config = c;
    const C = c.channels;
    const bn: BatchNormOptions = { movingStats: true, momentum: c.bnMomentum };
    const stemScope = this.root.child('stem');
    // Stem conv3×3 → BN, no ReLU.
    this.stem = [new Conv(stemScope, 3, c.inputShape[2], C), new BatchNorm(stemScope, C, bn)];
    const pools = new Set(macroPoolLayers(c.layers));
    this.layers = [];
    for (let i = 0; i < c.layers; i++) {
      const scope = this.root.child(`layer_${i}`);
      const ops = Object.fromEntries(
        MACRO_OPS.map((op) => [
          op,
          MACRO_OP_FACTORIES[op]({ scope: scope.child(op), channels: C, stride: 1, mode: 'search', bnMomentum: c.bnMomentum }),
        ]),
      ) as Record<MacroOp, CnnOp>;
      this.layers.push({ ops, skipBn: i > 0 ? new BatchNorm(scope.child('skip'), C, bn) : undefined });
      if (pools.has(i)) {
        const at = this.root.child(`pool_at_${i}`);
        const shared = c.weightSharing === 'per-node' ? new FactorizedReduction(at, C, C, bn) : undefined;
        this.reductions.set(
          i,
          Array.from({ length: i + 2 }, (_, j) => shared ?? new FactorizedReduction(at.child(`from_${j}`), C, C, bn)),
        );
      }
    }
    this.classifier = new Linear(this.root.child('fc'), C, c.numClasses);
    this.seal();
  }

  protected override forward(g: MacroGenotype, x: tf.Tensor4D, pass: Pass): ForwardResult {
    checkMacroGenotype(g, this.config.layers);
    const stem = chain(this.stem, x, pass, false);
    // history[j] = [stem, out_0, …]; after a pool layer each entry becomes its FR, computed only
    // if a later layer reads it.
    let history: (() => tf.Tensor4D)[] = [() => stem];
    g.layers.forEach((layer, i) => {
      const { ops, skipBn } = this.layers[i]!;
      let out = ops[layer.op](history[i]!(), pass);
      if (skipBn) {
        // out_i = BN(op(out_{i−1}) + Σ selected skips): bit j selects history[j] (ENAS.md §1a).
        const skips = layer.skips.flatMap((bit, j) => (bit ? [history[j]!()] : []));
        out = skipBn.apply(sum([out, ...skips], pass), pass);
      }
      const done = out;
      history.push(() => done);
      const reductions = this.reductions.get(i);
      if (reductions) history = history.map((entry, j) => lazy(() => reductions[j]!.apply(entry(), pass)));
    });
    const features = pass.dropOut(globalAvgPool(history[g.layers.length]!()), this.config.keepProb, false);
    return { logits: this.classifier.apply(features) };
  }
}
