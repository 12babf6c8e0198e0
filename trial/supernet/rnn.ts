/*
 * The ENAS RNN supernet for language modelling (search mode, ENAS.md §1c): one shared set of
 * weights from which every cell of the rnn space reads its own slices. The training loop is
 * RecurrentLanguageModel's (trial/rnn-cell.ts); this file owns the shared tensors and says
 * which rows each sampled cell uses.
 *
 * Weight sharing as E (`ptb_enas_child._rhn_enas`): W_prev [F·2H, 2H] holds one [2H,2H] block
 * per node-0 activation; W_skip_j [j·F·H, 2H] one [H,2H] block per (predecessor p, activation f)
 * of node j, at row (p·F + f)·H. A step reads and writes only its cell's blocks, the tied
 * embedding and the batch norms (one per node and one on the output, shared by all cells, as in
 * E), so the other rows stay bit-identical.
 *
 * Where this follows E's search child and where it does not (ENAS.md §6 item 1: E's PTB code is
 * called wrong by its own README; LM = google-research enas_lm is the corrected code):
 * - kept from E: node 0's activation is searched and W_prev sliced by it (LM fixes tanh); h_t is
 *   the mean of the loose ends (LM averages nodes 1..N); E's block layout; E's four dropout masks;
 *   L2 as λ·Σw²; uniform init with E's range rule by H;
 * - kept from E: batch norm on every node's pre-activation and on h_t (ε = 1, decay 0.999 per
 *   time step, batch statistics in training, moving statistics in evaluation and so in rewards).
 *   LM has none, but LM's node 0 is a fixed tanh. With node 0's activation searched, identity and
 *   ReLU chains have no bound. Measured on KJV (H=200, 12 nodes, batch 32×35, random cells):
 *   without the norms, clip 0.25 blew the hidden state up (|h| ≈ 7·10⁸) and hit NaN at step ≈77;
 *   clip 0.1 stayed finite for 150 steps but learned slower (validation loss 6.5–7.0 against
 *   6.3–6.4 with the norms). The fixed cell has none (E's final mode); `batchNorm: false` drops them;
 * - fixed: E builds the output mask but never applies it; applied here, as LM does;
 * - fixed: E sums the loss over time (per-token lr ×35); the loss here is the mean per token,
 *   as LM's, so LM's lr 20 and clip 0.1 mean what they say;
 * - fixed: E decays every slice every step; L2 here covers the weights the step used, as LM's;
 * - fixed: all four activations get weights by default. E's child allocates four, but its
 *   controller samples only tanh/ReLU (num_funcs=2, melodyguan/enas#27); `activations` follows
 *   the search space's op list, whatever it is;
 * - fixed: word dropout draws once per (row, word type); see sampleMasks.
 */
import tf = require('@tensorflow/tfjs-core');
import { Random } from '../../common/random.js';
import { RNN_ACTIVATIONS, type RnnActivation, type RnnGenotype } from '../../search-spaces/genotype.js';
import {
  cellPlan,
  checkRecurrentConfig,
  RecurrentLanguageModel,
  referenceInitRange,
  uniformVariable,
  type BatchNormTensors,
  type CellParameters,
  type RnnKeepProbs,
  type RnnRegularisation,
  type RowBlock,
} from '../rnn-cell.js';
import { initialTensor } from '../store-tf.js';
import type { StoreTensors } from '../store.js';

export interface RnnSupernetConfig extends RnnRegularisation {
  vocabSize: number;
  /** H, also the embedding size (the softmax is tied to the embedding). */
  hiddenSize: number;
  /** Nodes per cell; every genotype must have exactly this many. */
  nodes: number;
  /** The activations weights are allocated for, in slot order: the search space's op list. */
  activations: readonly RnnActivation[];
  keep: RnnKeepProbs;
  /** E's batch norms on node pre-activations and h_t (see above). */
  batchNorm: boolean;
  /** Weights start U(±initRange); default E's rule by H (0.1 up to H=300, 0.05 up to 400, then 0.04). */
  initRange?: number;
  /** Seeds the init and the dropout masks. */
  seed: number;
  /** Stored weights to start from instead of the seeded init (a trial loading the weight store). */
  initialState?: StoreTensors;
}

/**
 * Defaults, scaled for a 2-core CPU. Reference values (ENAS.md PTB table): E search H=720, LM
 * search H=200; 12 nodes (E); keep e/x/h/o .75/.25/.75/.25 (E search); L2 1e-7 (E search, paper);
 * no slowness term (E search has none). Clip 0.1 on the mean-per-token loss, as LM: with lr 20 a
 * step moves the weights by at most 2 (E search: at most 0.25·10 = 2.5 on its summed loss). The
 * paper's 0.25 (steps of 5) measured worse on KJV (H=200, 150 steps of 32×35): validation loss
 * 7.1–8.6 and swinging, against 6.3–6.5 with 0.1.
 */
export const RNN_SUPERNET_DEFAULTS: RnnSupernetConfig = {
  vocabSize: 10_000,
  hiddenSize: 200,
  nodes: 12,
  activations: RNN_ACTIVATIONS,
  keep: { embedding: 0.75, input: 0.25, hidden: 0.75, output: 0.25 },
  gradClip: 0.1,
  l2: 1e-7,
  slowness: 0,
  batchNorm: true,
  seed: 0,
};

/**
 * What a search loop should feed the supernet: lr 20 constant as LM (E decays ×0.95 per epoch
 * from epoch 12, the paper ×0.96 from 15); batch 32 (E 20, LM 128), BPTT 35 as both.
 */
export const RNN_SEARCH_TRAINING = { learningRate: 20, batchSize: 32, bpttSteps: 35 } as const;

/** The tensors of one batch norm, by state-name suffix, with their initial values. */
const NORM_TENSORS = { scale: 1, offset: 0, moving_mean: 0, moving_variance: 1 } as const;

/** E's batch norms and their widths: one per node on its [2H] pre-activation, then one on h_t [H]. */
function normLayers(nodes: number, H: number): [string, number][] {
  return [...Array.from({ length: nodes }, (_, j): [string, number] => [`bn_node_${j}`, 2 * H]), ['bn_output', H]];
}

/** Names and shapes of the supernet's tensors (its `state`), without allocating them. */
export function rnnSupernetShapes(
  config: Pick<RnnSupernetConfig, 'vocabSize' | 'hiddenSize' | 'nodes' | 'activations' | 'batchNorm'>,
): Map<string, number[]> {
  const { vocabSize: V, hiddenSize: H, nodes, activations } = config;
  const F = activations.length;
  const shapes = new Map<string, number[]>([
    ['embedding', [V, H]],
    ['w_prev', [F * 2 * H, 2 * H]],
  ]);
  for (let j = 1; j < nodes; j++) shapes.set(`w_skip_${j}`, [j * F * H, 2 * H]);
  if (config.batchNorm)
    for (const [layer, width] of normLayers(nodes, H)) for (const tensor of Object.keys(NORM_TENSORS)) shapes.set(`${layer}/${tensor}`, [width]);
  return shapes;
}

export class RnnSupernet extends RecurrentLanguageModel {
  readonly config: Readonly<RnnSupernetConfig>;
  readonly state: ReadonlyMap<string, tf.Variable>;
  private readonly wPrev: tf.Variable;
  /** Index j − 1 holds node j's W_skip. */
  private readonly wSkip: tf.Variable[];
  /** Nodes 0..N−1, then the output; absent without batch norms. */
  private readonly norms?: BatchNormTensors<tf.Variable>[];

  constructor(config: Partial<RnnSupernetConfig> = {}) {
    const full = { ...RNN_SUPERNET_DEFAULTS, ...config };
    const { vocabSize, hiddenSize, nodes, activations } = full;
    checkRecurrentConfig({ vocabSize, hiddenSize, nodes }, { keep: full.keep, reg: full });
    if (activations.length === 0 || new Set(activations).size !== activations.length)
      throw new RangeError(`activations ${JSON.stringify(activations)} must be distinct and non-empty`);
    const initRandom = new Random(full.seed);
    // Split off first, so the dropout masks are the same whether or not the init runs.
    const random = initRandom.split();
    const range = full.initRange ?? referenceInitRange(full.hiddenSize);
    const state = new Map<string, tf.Variable>();
    for (const [name, shape] of rnnSupernetShapes(full)) {
      const normTensor = name.startsWith('bn_') ? (name.split('/')[1] as keyof typeof NORM_TENSORS) : undefined;
      // Moving statistics are assigned, not trained (trial/parallel-worker.ts averages what a step assigned).
      const trainable = normTensor !== 'moving_mean' && normTensor !== 'moving_variance';
      const initial = full.initialState && initialTensor(full.initialState, name, shape);
      if (initial) {
        state.set(name, tf.variable(initial, trainable));
        initial.dispose();
      } else if (normTensor) {
        const value = tf.fill(shape, NORM_TENSORS[normTensor]);
        state.set(name, tf.variable(value, trainable));
        value.dispose();
      } else state.set(name, uniformVariable(initRandom, shape, range));
    }
    super(state.get('embedding')!, { keep: full.keep, reg: full }, random);
    this.config = full;
    this.state = state;
    this.wPrev = state.get('w_prev')!;
    this.wSkip = Array.from({ length: full.nodes - 1 }, (_, i) => state.get(`w_skip_${i + 1}`)!);
    if (full.batchNorm)
      this.norms = normLayers(full.nodes, full.hiddenSize).map(([layer]) => ({
        scale: state.get(`${layer}/scale`)!,
        offset: state.get(`${layer}/offset`)!,
        movingMean: state.get(`${layer}/moving_mean`)!,
        movingVariance: state.get(`${layer}/moving_variance`)!,
      }));
  }

  private slot(act: RnnActivation, node: number): number {
    const f = this.config.activations.indexOf(act);
    if (f < 0)
      throw new RangeError(`RNN node ${node}: activation "${act}" has no weights; this supernet has ${this.config.activations.join(', ')}`);
    return f;
  }

  protected cell(genotype: RnnGenotype): CellParameters {
    const plan = cellPlan(genotype);
    const { nodes, hiddenSize: H, activations } = this.config;
    if (plan.prev.length !== nodes) throw new RangeError(`the genotype has ${plan.prev.length} nodes, this supernet ${nodes}`);
    const F = activations.length;
    const blocks = plan.prev.map((p, j): RowBlock => {
      const f = this.slot(plan.act[j]!, j);
      return j === 0
        ? { variable: this.wPrev, firstRow: f * 2 * H, rows: 2 * H }
        : { variable: this.wSkip[j - 1]!, firstRow: (p * F + f) * H, rows: H };
    });
    return { plan, blocks, ...(this.norms && { norms: this.norms }) };
  }
}
