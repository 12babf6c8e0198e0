/*
 * The fixed RNN for retraining one cell from scratch (ENAS.md §1c fixed mode, §4): one weight
 * matrix per node, W_prev [2H,2H] for node 0 and W_j [H,2H] for node j, no BN, as E's
 * `ptb_enas_child._rhn_fixed`. The training loop is RecurrentLanguageModel's (trial/rnn-cell.ts),
 * the same as the supernet's, with E's final-script regularisation as defaults. Departures from
 * E are the supernet's (trial/supernet/rnn.ts): mean-per-token loss, output mask applied, word
 * dropout per (row, word type).
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../../common/random.js';
import type { RnnGenotype } from '../../search-spaces/genotype.js';
import {
  cellPlan,
  checkRecurrentConfig,
  RecurrentLanguageModel,
  referenceInitRange,
  uniformVariable,
  type CellParameters,
  type CellPlan,
  type RnnKeepProbs,
  type RnnRegularisation,
  type RowBlock,
} from '../rnn-cell.js';

export interface FixedRnnConfig extends RnnRegularisation {
  vocabSize: number;
  /** H, also the embedding size (tied softmax). */
  hiddenSize: number;
  keep: RnnKeepProbs;
  /** Weights start U(±initRange); default E's rule by H (0.04 for the reference 748). */
  initRange?: number;
  /** Seeds the init and the dropout masks. */
  seed: number;
}

/**
 * Defaults: E's ptb_final regularisation (keep e/x/h/o .79/.25/.75/.24, clip 0.25, L2 5e-7,
 * slowness 1e-3, which E adds per summed-over-time loss; per token it is the same β), with
 * H scaled for a 2-core CPU (E 748, LM 800; set 748 for the reference model, ≈22.0M parameters).
 */
export const FIXED_RNN_DEFAULTS: FixedRnnConfig = {
  vocabSize: 10_000,
  hiddenSize: 400,
  keep: { embedding: 0.79, input: 0.25, hidden: 0.75, output: 0.24 },
  gradClip: 0.25,
  l2: 5e-7,
  slowness: 1e-3,
  seed: 0,
};

/** What a retraining loop should feed the model: E ptb_final's lr 20 (×0.9991 per epoch from epoch 14), batch 64, BPTT 35. */
export const RNN_FINAL_TRAINING = { learningRate: 20, batchSize: 64, bpttSteps: 35 } as const;

/** Names and shapes of the fixed RNN's tensors (its `state`) for a cell of `nodes` nodes, without allocating them. */
export function fixedRnnShapes(config: Pick<FixedRnnConfig, 'vocabSize' | 'hiddenSize'>, nodes: number): Map<string, number[]> {
  const { vocabSize: V, hiddenSize: H } = config;
  const shapes = new Map<string, number[]>([
    ['embedding', [V, H]],
    ['w_prev', [2 * H, 2 * H]],
  ]);
  for (let j = 1; j < nodes; j++) shapes.set(`w_${j}`, [H, 2 * H]);
  return shapes;
}

export class FixedRnn extends RecurrentLanguageModel {
  readonly config: Readonly<FixedRnnConfig>;
  readonly genotype: RnnGenotype;
  readonly state: ReadonlyMap<string, tf.Variable>;
  private readonly plan: CellPlan;
  private readonly nodeBlocks: RowBlock[];

  constructor(genotype: RnnGenotype, config: Partial<FixedRnnConfig> = {}) {
    const full = { ...FIXED_RNN_DEFAULTS, ...config };
    checkRecurrentConfig({ vocabSize: full.vocabSize, hiddenSize: full.hiddenSize }, { keep: full.keep, reg: full });
    const plan = cellPlan(genotype);
    const random = new Random(full.seed);
    const range = full.initRange ?? referenceInitRange(full.hiddenSize);
    const state = new Map<string, tf.Variable>();
    for (const [name, shape] of fixedRnnShapes(full, plan.prev.length)) state.set(name, uniformVariable(random, shape, range));
    super(state.get('embedding')!, { keep: full.keep, reg: full }, random);
    this.config = full;
    this.genotype = genotype;
    this.state = state;
    this.plan = plan;
    this.nodeBlocks = plan.prev.map((_, j) => {
      const variable = state.get(j === 0 ? 'w_prev' : `w_${j}`)!;
      return { variable, firstRow: 0, rows: variable.shape[0]! };
    });
  }

  /** Always the cell this model was built for: a fixed network ignores the genotype it is handed. */
  protected cell(): CellParameters {
    return { plan: this.plan, blocks: this.nodeBlocks };
  }
}
