/*
 * The retrain-time network of one macro architecture (ENAS.md §1a, final mode): the chosen op
 * per layer; from layer 1 on, concat(selected skips, op output) → ReLU → 1×1 → BN; channels
 * double at each pool layer, where the history is factorized-reduced.
 *
 * The reference's fixed-arc builder has bugs (ENAS.md §1a "Fixed-arc bugs"): it builds sep-convs
 * as plain convs, has no pooling branches, and orders the ops pre-activation. Here every op is
 * the registry's, the same body the supernet searched with.
 */
import tf = require('@tensorflow/tfjs-core');
import type { MacroGenotype } from '../../search-spaces/genotype.js';
import { checkMacroGenotype, ImageClassifier, lazy, macroPoolLayers, type ClassifierConfig, type ForwardResult } from '../cnn.js';
import {
  BatchNorm,
  BN_DECAY,
  chain,
  concatChannels,
  Conv,
  FactorizedReduction,
  globalAvgPool,
  Linear,
  PointwiseConv,
  RELU,
  type BatchNormOptions,
  type Pass,
  type Stage,
} from '../nn.js';
import { MACRO_OP_FACTORIES, type CnnOp } from '../ops.js';

export interface MacroFixedConfig extends ClassifierConfig {
  /** Channels of the first stage; ×2 after each pool layer. */
  channels: number;
  keepProb: number;
  bnMomentum: number;
}

/** The reference `macro_final` column (ENAS.md hyperparameter table); depth comes from the genotype. */
export const MACRO_FINAL_DEFAULTS: MacroFixedConfig = {
  inputShape: [32, 32, 3],
  numClasses: 10,
  channels: 96,
  keepProb: 0.5,
  l2: 2e-4,
  bnMomentum: BN_DECAY,
  seed: 0,
};

interface FixedLayer {
  op: CnnOp;
  /** ReLU → 1×1 ((k+1)·C → C) → BN over concat(skips, op output); absent for layer 0. */
  combine?: Stage[];
}

export class MacroFixedNet extends ImageClassifier<MacroGenotype> {
  readonly config: MacroFixedConfig;
  private readonly stem: Stage[];
  private readonly layers: FixedLayer[] = [];
  /** Pool layer → FR per history entry, only for the entries a later layer reads. */
  private readonly reductions = new Map<number, Map<number, FactorizedReduction>>();
  private readonly classifier: Linear;

  constructor(
    readonly genotype: MacroGenotype,
    config: Partial<MacroFixedConfig> = {},
  ) {
    const c: MacroFixedConfig = { ...MACRO_FINAL_DEFAULTS, ...config };
    super(c, 0);
    this.config = c;
    const L = genotype.layers.length;
    checkMacroGenotype(genotype, L);
    const bn: BatchNormOptions = { movingStats: true, momentum: c.bnMomentum };
    let C = c.channels;
    const stemScope = this.root.child('stem');
    this.stem = [new Conv(stemScope, 3, c.inputShape[2], C), new BatchNorm(stemScope, C, bn)];
    // lastRead[j]: the last layer (L for the classifier) reading history entry j.
    const lastRead = new Array<number>(L + 1).fill(-1);
    genotype.layers.forEach((layer, i) => {
      lastRead[i] = i;
      layer.skips.forEach((bit, j) => {
        if (bit) lastRead[j] = i;
      });
    });
    lastRead[L] = L;
    const pools = new Set(macroPoolLayers(L));
    genotype.layers.forEach((layer, i) => {
      const scope = this.root.child(`layer_${i}`);
      const op = MACRO_OP_FACTORIES[layer.op]({ scope: scope.child(layer.op), channels: C, stride: 1, mode: 'fixed', bnMomentum: c.bnMomentum });
      const inputs = 1 + layer.skips.reduce<number>((n, bit) => n + bit, 0);
      const combine =
        i > 0
          ? [RELU, new PointwiseConv(scope.child('skip'), inputs * C, C), new BatchNorm(scope.child('skip'), C, bn)]
          : undefined;
      this.layers.push({ op, combine });
      if (pools.has(i)) {
        const at = this.root.child(`pool_at_${i}`);
        const reductions = new Map<number, FactorizedReduction>();
        for (let j = 0; j <= i + 1; j++)
          if (lastRead[j]! > i) reductions.set(j, new FactorizedReduction(at.child(`from_${j}`), C, 2 * C, bn));
        this.reductions.set(i, reductions);
        C *= 2;
      }
    });
    this.classifier = new Linear(this.root.child('fc'), C, c.numClasses);
    this.seal();
  }

  protected override forward(_: MacroGenotype, x: tf.Tensor4D, pass: Pass): ForwardResult {
    const stem = chain(this.stem, x, pass, false);
    let history: (() => tf.Tensor4D)[] = [() => stem];
    this.genotype.layers.forEach((layer, i) => {
      const { op, combine } = this.layers[i]!;
      let out = op(history[i]!(), pass);
      if (combine) {
        const selected = layer.skips.flatMap((bit, j) => (bit ? [history[j]!()] : []));
        out = chain(combine, concatChannels([...selected, out], pass), pass);
      }
      const done = out;
      history.push(() => done);
      const reductions = this.reductions.get(i);
      if (reductions)
        history = history.map((entry, j) => {
          const fr = reductions.get(j);
          return fr ? lazy(() => fr.apply(entry(), pass)) : unread;
        });
    });
    const features = pass.dropOut(globalAvgPool(history[this.genotype.layers.length]!()), this.config.keepProb, false);
    return { logits: this.classifier.apply(features) };
  }
}

function unread(): tf.Tensor4D {
  throw new Error('internal: a history entry without a reduction was read');
}
