/*
 * The retrain-time network of one micro architecture (ENAS.md §1b, final mode): num_layers + 2
 * cells built from the genotype's normal and reduce cells. Per cell: calibrate both inputs to C,
 * `layer_base` (ReLU → 1×1 → BN) on h_{i−1}, the chosen ops (in reduction cells those reading a
 * cell input at stride 2, identity becoming FR), drop-path on non-identity ops, and the plain
 * channel concat of the loose ends. Aux head after the cell following the last reduction.
 */
import tf = require('@tensorflow/tfjs-core');
import { microLooseEnds, type MicroGenotype, type MicroNode } from '../../search-spaces/genotype.js';
import { checkMicroArc, ImageClassifier, microReductionCells, type ForwardResult, type MicroLayoutConfig } from '../cnn.js';
import {
  AuxHead,
  BatchNorm,
  BN_DECAY,
  Calibration,
  chain,
  concatChannels,
  Conv,
  FactorizedReduction,
  globalAvgPool,
  halved,
  Linear,
  onBackend,
  ReluConvBn,
  sum,
  type BatchNormOptions,
  type FeatureShape,
  type Pass,
  type Stage,
} from '../nn.js';
import type { Batch, StepStats } from '../model.js';
import { MICRO_OP_FACTORIES, type CnnOp } from '../ops.js';
import { assignValues } from '../store-tf.js';

export interface MicroFixedConfig extends MicroLayoutConfig {
  /** Drop-path keep-probability reached by the last cell at the end of training. */
  dropPathKeep: number;
  /** Training steps of the whole run; drop-path ramps up linearly over them. */
  totalSteps: number;
  /** Decay of the BN moving statistics. */
  bnMomentum: number;
}

/** The reference `micro_final` column (ENAS.md hyperparameter table): 630 epochs of 50k images at batch 144. */
export const MICRO_FINAL_DEFAULTS: MicroFixedConfig = {
  inputShape: [32, 32, 3],
  numClasses: 10,
  channels: 36,
  layers: 15,
  keepProb: 0.8,
  l2: 2e-4,
  auxHead: true,
  auxWeight: 0.4,
  dropPathKeep: 0.6,
  totalSteps: 630 * Math.ceil(50000 / 144),
  bnMomentum: BN_DECAY,
  seed: 0,
};

interface FixedOp {
  op: CnnOp;
  /** Drop-path applies to every op but identity (ENAS.md §1b). */
  dropPath: boolean;
}

interface FixedCell {
  arc: MicroNode[];
  calibration: Calibration;
  layerBase: ReluConvBn;
  ops: [FixedOp, FixedOp][];
  loose: number[];
  /**
   * Loose cell inputs of a reduction cell are at twice the output size; the reference would fail
   * to concat them, so they are factorized-reduced first (as NASNet does with unused states).
   */
  looseReductions: Map<number, FactorizedReduction>;
  /** keep_l = 1 − (l+1)/(L+2)·(1 − drop_path_keep). */
  dropPathKeep: number;
}

export class MicroFixedNet extends ImageClassifier<MicroGenotype> {
  readonly config: MicroFixedConfig;
  private readonly stem: Stage[];
  private readonly cells: FixedCell[] = [];
  private readonly aux?: { cell: number; head: AuxHead };
  private readonly classifier: Linear;
  /** Steps taken, part of the state so a resumed run continues the drop-path schedule. */
  private readonly globalStep: tf.Variable;

  constructor(
    readonly genotype: MicroGenotype,
    config: Partial<MicroFixedConfig> = {},
  ) {
    const c: MicroFixedConfig = { ...MICRO_FINAL_DEFAULTS, ...config };
    super(c, c.auxWeight);
    this.config = c;
    checkMicroArc(genotype.normal, genotype.normal.length);
    checkMicroArc(genotype.reduce, genotype.normal.length);
    const bn: BatchNormOptions = { movingStats: true, momentum: c.bnMomentum };
    const [height, width, inChannels] = c.inputShape;
    const stemScope = this.root.child('stem');
    this.stem = [new Conv(stemScope, 3, inChannels, 3 * c.channels), new BatchNorm(stemScope, 3 * c.channels, bn)];
    let prev: FeatureShape = { height, width, channels: 3 * c.channels };
    let last = prev;
    let C = c.channels;
    const reductions = microReductionCells(c.layers);
    const auxCell = reductions[1]! + 1;
    for (let i = 0; i < c.layers + 2; i++) {
      const scope = this.root.child(`cell_${i}`);
      const reduction = reductions.includes(i);
      if (reduction) C *= 2;
      const arc = reduction ? genotype.reduce : genotype.normal;
      const calibration = new Calibration(scope, prev, last, C, bn);
      const layerBase = new ReluConvBn(scope.child('layer_base'), C, C, bn);
      const stride = (input: number): 1 | 2 => (reduction && input < 2 ? 2 : 1);
      const ops = arc.map((node, b) =>
        ([0, 1] as const).map((k) => {
          const name = node.ops[k];
          const op = MICRO_OP_FACTORIES[name]({
            scope: scope.child(`node_${b + 2}`).child(k === 0 ? 'x' : 'y').child(name),
            channels: C,
            stride: stride(node.inputs[k]),
            mode: 'fixed',
            bnMomentum: c.bnMomentum,
          });
          return { op, dropPath: name !== 'identity' };
        }) as [FixedOp, FixedOp],
      );
      const loose = microLooseEnds(arc);
      const looseReductions = new Map<number, FactorizedReduction>();
      if (reduction)
        for (const j of loose.filter((j) => j < 2))
          looseReductions.set(j, new FactorizedReduction(scope.child(`output/reduce_from_${j}`), C, C, bn));
      const dropPathKeep = 1 - ((i + 1) / (c.layers + 2)) * (1 - c.dropPathKeep);
      this.cells.push({ arc, calibration, layerBase, ops, loose, looseReductions, dropPathKeep });
      const size = reduction ? halved(last, C) : last;
      [prev, last] = [last, { height: size.height, width: size.width, channels: loose.length * C }];
      if (c.auxHead && i === auxCell) this.aux = { cell: i, head: new AuxHead(this.root.child('aux_head'), last, c.numClasses) };
    }
    this.classifier = new Linear(this.root.child('fc'), last.channels, c.numClasses);
    this.globalStep = onBackend(this.root.filled('global_step', [], 0, false));
    this.seal();
  }

  override trainStep(g: MicroGenotype, batch: Batch, lr: number): StepStats {
    const stats = super.trainStep(g, batch, lr);
    assignValues(this.globalStep, Float32Array.of(this.globalStep.dataSync()[0]! + 1));
    return stats;
  }

  protected override forward(_: MicroGenotype, x: tf.Tensor4D, pass: Pass): ForwardResult {
    // keep = 1 − min(1, (step+1)/total_steps)·(1 − keep_l), per cell (ENAS.md §1b).
    const progress = pass.training ? Math.min(1, (this.globalStep.dataSync()[0]! + 1) / this.config.totalSteps) : 0;
    const stem = chain(this.stem, x, pass, false);
    let [prev, last] = [stem, stem];
    let auxLogits: tf.Tensor2D | undefined;
    this.cells.forEach((cell, i) => {
      const [a, b] = cell.calibration.apply(prev, last, pass);
      const nodes = [a, cell.layerBase.apply(b, pass)];
      const keep = 1 - progress * (1 - cell.dropPathKeep);
      cell.arc.forEach((node, n) => {
        const [x, y] = ([0, 1] as const).map((k) => {
          const { op, dropPath } = cell.ops[n]![k];
          const out = op(nodes[node.inputs[k]]!, pass);
          return dropPath ? pass.dropOut(out, keep, true) : out;
        });
        nodes.push(sum([x!, y!], pass));
      });
      const ends = cell.loose.map((j) => cell.looseReductions.get(j)?.apply(nodes[j]!, pass) ?? nodes[j]!);
      const out = concatChannels(ends, pass);
      if (pass.training && this.aux?.cell === i) auxLogits = this.aux.head.apply(out, pass);
      pass.discard([prev, ...nodes, ...ends], [last, out]);
      [prev, last] = [last, out];
    });
    const features = pass.dropOut(globalAvgPool(pass.relu(last)), this.config.keepProb, false);
    return { logits: this.classifier.apply(features), auxLogits };
  }
}
