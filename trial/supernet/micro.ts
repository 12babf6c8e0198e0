/*
 * The micro space's shared-weight supernet (ENAS.md §1b, search mode): num_layers + 2 cells, the
 * sampled normal arc in normal cells and the reduce arc (at stride 1) in reduction cells. A
 * training step runs only the sampled ops, so only their weights get a gradient.
 *
 * Weight sharing as the reference: each node has separate op weights for its two inputs
 * ("x", "y"), and every weighted op is further indexed by the *input node* it reads. The
 * reference stores those as [num_possible_inputs, …] tensors and gathers a row; here each row is
 * its own variable (`…/from_<input>/…`), which selects the same weights without a gather per
 * tensor per step and without the scatter-add in its gradient, and lets a step leave the rows
 * of unchosen inputs untouched. The loose-end output conv likewise has one [C, C] block per node.
 *
 * `weightSharing: 'per-node'` (a deviation, NNI's legacy ENAS example) drops the input-node
 * index: one set per (node, slot, op), read whichever input the op is applied to.
 */
import tf = require('@tensorflow/tfjs-core');
import { MICRO_OPS, microLooseEnds, type MicroGenotype, type MicroNode, type MicroOp } from '../../search-spaces/genotype.js';
import { checkMicroArc, ImageClassifier, microReductionCells, type ForwardResult, type MicroLayoutConfig } from '../cnn.js';
import {
  AuxHead,
  BatchNorm,
  BN_DECAY,
  Calibration,
  chain,
  Conv,
  FactorizedReduction,
  globalAvgPool,
  halved,
  Linear,
  PointwiseConv,
  sum,
  type BatchNormOptions,
  type FeatureShape,
  type Pass,
  type Scope,
  type Stage,
} from '../nn.js';
import { MICRO_OP_FACTORIES, type CnnOp } from '../ops.js';
import type { WeightSharing } from '../options.js';

export interface MicroSupernetConfig extends MicroLayoutConfig {
  /** Computed nodes per cell. */
  nodes: number;
  weightSharing: WeightSharing;
}

/** The reference `micro_search` column (ENAS.md hyperparameter table), on CIFAR-10 shapes. */
export const MICRO_SEARCH_DEFAULTS: MicroSupernetConfig = {
  inputShape: [32, 32, 3],
  numClasses: 10,
  channels: 20,
  layers: 6,
  nodes: 5,
  keepProb: 0.9,
  l2: 1e-4,
  auxHead: true,
  auxWeight: 0.4,
  seed: 0,
  weightSharing: 'per-input',
};

/** One input slot of a node: per possible input node, every op of MICRO_OPS. */
type SlotOps = Record<MicroOp, CnnOp>[];

interface SearchCell {
  reduction: boolean;
  /** Reduction cells first reduce h_{i−1} to 2C; the cell then reads [h_{i−1}, FR(h_{i−1})]. */
  reduceInput?: FactorizedReduction;
  calibration: Calibration;
  nodes: [SlotOps, SlotOps][];
  /** Loose-end output: ReLU → 1×1 conv (one [C, C] block per node) → BN. */
  output: PointwiseConv[];
  outputBn: BatchNorm;
}

export class MicroSupernet extends ImageClassifier<MicroGenotype> {
  readonly config: MicroSupernetConfig;
  private readonly stem: Stage[];
  private readonly cells: SearchCell[] = [];
  private readonly aux?: { cell: number; head: AuxHead };
  private readonly classifier: Linear;

  constructor(config: Partial<MicroSupernetConfig> = {}) {
    const c: MicroSupernetConfig = { ...MICRO_SEARCH_DEFAULTS, ...config };
    super(c, c.auxWeight);
    this.config = c;
    // No moving statistics anywhere: the search child normalises with batch statistics in every pass.
    const bn: BatchNormOptions = { movingStats: false, momentum: BN_DECAY };
    const [height, width, inChannels] = c.inputShape;
    const stemScope = this.root.child('stem');
    // Stem conv3×3 → 3C → BN, fed as both inputs of the first cell.
    this.stem = [new Conv(stemScope, 3, inChannels, 3 * c.channels), new BatchNorm(stemScope, 3 * c.channels, bn)];
    let prev: FeatureShape = { height, width, channels: 3 * c.channels };
    let last = prev;
    let C = c.channels;
    const reductions = microReductionCells(c.layers);
    const auxCell = reductions[1]! + 1;
    for (let i = 0; i < c.layers + 2; i++) {
      const scope = this.root.child(`cell_${i}`);
      const reduction = reductions.includes(i);
      let reduceInput: FactorizedReduction | undefined;
      if (reduction) {
        C *= 2;
        reduceInput = new FactorizedReduction(scope.child('reduce_input'), last.channels, C, bn);
        [prev, last] = [last, halved(last, C)];
      }
      const calibration = new Calibration(scope, prev, last, C, bn);
      const opsAt = (at: (op: MicroOp) => Scope) =>
        Object.fromEntries(
          MICRO_OPS.map((op) => [op, MICRO_OP_FACTORIES[op]({ scope: at(op), channels: C, stride: 1, mode: 'search', bnMomentum: BN_DECAY })]),
        ) as Record<MicroOp, CnnOp>;
      const nodes = Array.from({ length: c.nodes }, (_, b) =>
        (['x', 'y'] as const).map((slot) => {
          const at = scope.child(`node_${b + 2}`).child(slot);
          if (c.weightSharing === 'per-node') return Array<Record<MicroOp, CnnOp>>(b + 2).fill(opsAt((op) => at.child(op)));
          return Array.from({ length: b + 2 }, (_, input) => opsAt((op) => at.child(op).child(`from_${input}`)));
        }) as [SlotOps, SlotOps],
      );
      const outScope = scope.child('output');
      const output = Array.from({ length: c.nodes + 2 }, (_, j) => new PointwiseConv(outScope.child(`from_${j}`), C, C));
      this.cells.push({ reduction, reduceInput, calibration, nodes, output, outputBn: new BatchNorm(outScope, C, bn) });
      [prev, last] = [last, { height: last.height, width: last.width, channels: C }];
      if (c.auxHead && i === auxCell) this.aux = { cell: i, head: new AuxHead(this.root.child('aux_head'), last, c.numClasses) };
    }
    this.classifier = new Linear(this.root.child('fc'), C, c.numClasses);
    this.seal();
  }

  protected override forward(g: MicroGenotype, x: tf.Tensor4D, pass: Pass): ForwardResult {
    checkMicroArc(g.normal, this.config.nodes);
    checkMicroArc(g.reduce, this.config.nodes);
    const stem = chain(this.stem, x, pass, false);
    let [prev, last] = [stem, stem];
    let auxLogits: tf.Tensor2D | undefined;
    this.cells.forEach((cell, i) => {
      if (cell.reduceInput) [prev, last] = [last, cell.reduceInput.apply(last, pass)];
      const out = this.runCell(cell, cell.reduction ? g.reduce : g.normal, prev, last, pass);
      if (pass.training && this.aux?.cell === i) auxLogits = this.aux.head.apply(out, pass);
      pass.discard([prev], [last, out]);
      [prev, last] = [last, out];
    });
    const features = pass.dropOut(globalAvgPool(pass.relu(last)), this.config.keepProb, false);
    return { logits: this.classifier.apply(features), auxLogits };
  }

  private runCell(cell: SearchCell, arc: MicroNode[], prev: tf.Tensor4D, last: tf.Tensor4D, pass: Pass): tf.Tensor4D {
    const nodes = cell.calibration.apply(prev, last, pass);
    arc.forEach((node, b) => {
      const [x, y] = ([0, 1] as const).map((k) => cell.nodes[b]![k][node.inputs[k]]![node.ops[k]](nodes[node.inputs[k]]!, pass));
      nodes.push(sum([x!, y!], pass));
    });
    const mixed = microLooseEnds(arc).map((j) => chain([cell.output[j]!], pass.relu(nodes[j]!), pass));
    const summed = sum(mixed, pass);
    const out = cell.outputBn.apply(summed, pass);
    pass.discard([...nodes, ...mixed, summed], [prev, last, out]);
    return out;
  }
}
