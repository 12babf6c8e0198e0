/*
 * The ENAS recurrent cell (ENAS.md §1c) over one BPTT window: forward, a hand-written backward
 * pass, the tied softmax and the clipped SGD step. The RNN supernet (trial/supernet/rnn.ts) and
 * the fixed RNN (trial/fixed/rnn.ts) share all of it through RecurrentLanguageModel; they differ
 * only in where each node's weight matrix lives (a row block of a shared tensor, or its own).
 *
 * Why not tf.grads: a 12-node cell unrolled 35 times is thousands of small ops, and tfjs's
 * matMul gradients are transposed products, about 10× slower than plain ones on wasm at these
 * sizes (TFJS-BACKENDS.md §2–3). By hand every product is untransposed, each weight gets one
 * matMul over the whole window instead of one per time step, the softmax is one XNNPACK kernel
 * (no Exp over the logits), and the embedding gets one segment sum. It also needs none of the
 * gradient functions, which tfjs-core's Node bundle does not register.
 * test/supernet-rnn.test.ts checks them against central differences of a float64 reference.
 *
 * Layout: a window's T·B positions are time-major (row t·B + b is batch row b at step t), so a
 * time step is a contiguous block of B rows.
 */
import tf = require('@tensorflow/tfjs-core');
import type { Random } from '../common/random.js';
import { RNN_ACTIVATIONS, rnnLooseEnds, type RnnActivation, type RnnGenotype } from '../search-spaces/genotype.js';
import type { Batch, StepStats, TrainableModel } from './model.js';
import { RNN_ACTIVATION_FNS, RNN_ACTIVATION_GRADS } from './ops.js';

/** Keep probabilities of the variational dropout masks, each fixed over a BPTT window (ENAS.md §1c). */
export interface RnnKeepProbs {
  /** Word dropout on the embedding: a word type dropped in a batch row is dropped at all its positions there. */
  embedding: number;
  /** On the cell input x_t, per (batch row, feature). */
  input: number;
  /** On every node's input, h_{t−1} included, per (batch row, feature). */
  hidden: number;
  /** On h_t before the softmax, per (batch row, feature). */
  output: number;
}

/** The regularisers and the clipping of one SGD step. */
export interface RnnRegularisation {
  /** Bound on the global gradient norm (TensorFlow's clip_by_global_norm); 0 disables. */
  gradClip: number;
  /** λ of E's λ·Σw² (gradient 2λw), over the weights the step's architecture used. */
  l2: number;
  /** Temporal activation regularisation: β·mean over (b, t ≥ 1) of ‖h_t − h_{t−1}‖², on h before output dropout. */
  slowness: number;
}

/** E's uniform init range by hidden size (E `ptb_enas_child._build_params`; 0.04 for the reference H of 720/748). */
export function referenceInitRange(hiddenSize: number): number {
  return hiddenSize <= 300 ? 0.1 : hiddenSize <= 400 ? 0.05 : 0.04;
}

/** An RNN genotype checked and arranged for unrolling. */
export interface CellPlan {
  /** Node j reads node prev[j] (j ≥ 1); node 0 reads x_t and h_{t−1} (prev −1). */
  prev: readonly number[];
  act: readonly RnnActivation[];
  /** h_t is the mean of these nodes (ENAS.md §1c). */
  looseEnds: readonly number[];
}

export function cellPlan(genotype: RnnGenotype): CellPlan {
  const { nodes } = genotype;
  if (nodes.length === 0) throw new RangeError('an RNN cell needs at least one node');
  nodes.forEach((node, j) => {
    const ok = j === 0 ? node.prev === -1 : Number.isInteger(node.prev) && node.prev >= 0 && node.prev < j;
    if (!ok) throw new RangeError(`RNN node ${j}: predecessor ${node.prev} is not ${j === 0 ? '-1' : `in 0..${j - 1}`}`);
    if (!RNN_ACTIVATIONS.includes(node.act)) throw new RangeError(`RNN node ${j}: unknown activation "${node.act}"`);
  });
  return { prev: nodes.map((n) => n.prev), act: nodes.map((n) => n.act), looseEnds: rnnLooseEnds(nodes) };
}

/** One [B,T] window of token ids, rearranged time-major on the host. */
export interface TextWindow {
  batchSize: number;
  steps: number;
  /** x and y, time-major: entry t·B + b is x[b,t] (y[b,t]). */
  inputs: Int32Array;
  targets: Int32Array;
}

export function readWindow(batch: Batch, vocabSize: number): TextWindow {
  const { x, y } = batch;
  if (x.rank !== 2 || x.dtype !== 'int32' || y.dtype !== 'int32' || !tf.util.arraysEqual(x.shape, y.shape))
    throw new RangeError(`a text batch is int32 x and y of one shape [B,T]; got x ${x.dtype} [${x.shape}], y ${y.dtype} [${y.shape}]`);
  const [batchSize, steps] = x.shape as [number, number];
  const toTimeMajor = (ids: Int32Array, what: string): Int32Array => {
    const out = new Int32Array(ids.length);
    for (let b = 0; b < batchSize; b++)
      for (let t = 0; t < steps; t++) {
        const id = ids[b * steps + t]!;
        if (!(id >= 0 && id < vocabSize)) throw new RangeError(`${what}[${b},${t}] = ${id} is outside the vocabulary 0..${vocabSize - 1}`);
        out[t * batchSize + b] = id;
      }
    return out;
  };
  return {
    batchSize,
    steps,
    inputs: toTimeMajor(x.dataSync() as Int32Array, 'x'),
    targets: toTimeMajor(y.dataSync() as Int32Array, 'y'),
  };
}

/** Dropout masks for one window, values 0 or 1/keep; absent where keep is 1. */
export interface WindowMasks {
  /** [T·B, H]: the word mask of each position times the input mask of its batch row. */
  input?: tf.Tensor;
  /** [B, H]. */
  hidden?: tf.Tensor;
  /** [T·B, H]: the output mask of each position's batch row. */
  output?: tf.Tensor;
}

/**
 * Draws the masks of one window. Word dropout draws once per (batch row, word type), which is
 * what E's loop intends; E's loop also zeroes a repeat whenever an earlier occurrence was dropped,
 * so its k-th occurrence of a word survives with keep^k instead of keep (fixed here).
 */
export function sampleMasks(random: Random, window: TextWindow, hiddenSize: number, keep: RnnKeepProbs): WindowMasks {
  const { batchSize: B, steps: T, inputs } = window;
  const H = hiddenSize;
  const draw = (p: number): number => (random.next() < p ? 1 / p : 0);
  const rowFeatureMask = (p: number): Float32Array => Float32Array.from({ length: B * H }, () => draw(p));
  const masks: WindowMasks = {};
  if (keep.embedding < 1 || keep.input < 1) {
    const word = new Float32Array(T * B).fill(1);
    if (keep.embedding < 1)
      for (let b = 0; b < B; b++) {
        const fate = new Map<number, number>();
        for (let t = 0; t < T; t++) {
          const id = inputs[t * B + b]!;
          if (!fate.has(id)) fate.set(id, draw(keep.embedding));
          word[t * B + b] = fate.get(id)!;
        }
      }
    const x = keep.input < 1 ? rowFeatureMask(keep.input) : new Float32Array(B * H).fill(1);
    const values = new Float32Array(T * B * H);
    for (let r = 0; r < T * B; r++) for (let h = 0; h < H; h++) values[r * H + h] = word[r]! * x[(r % B) * H + h]!;
    masks.input = tf.tensor2d(values, [T * B, H]);
  }
  if (keep.hidden < 1) masks.hidden = tf.tensor2d(rowFeatureMask(keep.hidden), [B, H]);
  if (keep.output < 1) {
    const o = rowFeatureMask(keep.output);
    const values = new Float32Array(T * B * H);
    for (let t = 0; t < T; t++) values.set(o, t * B * H);
    masks.output = tf.tensor2d(values, [T * B, H]);
  }
  return masks;
}

/**
 * How a window cuts rows and column halves out of tensors and reduces over rows. 'gather' is
 * shaped around wasm: there slice (and split, which slices) first copies the whole source tensor,
 * and reducing axis 0 transposes first, so rows are gathered and column sums are products with a
 * row of ones. 'native' slices, splits and reduces: on tfjs-node each is one cheap kernel, and the
 * products cost a quarter of a training step (bench/supernet-rnn.ts: 1,240 → 1,520 tokens/s). The
 * two compute the same values (test/supernet-rnn.test.ts).
 */
export type Slicing = 'gather' | 'native';

/** The slicing that is faster on `backend` (tf.getBackend()). */
export const slicingFor = (backend: string): Slicing => (backend === 'wasm' ? 'gather' : 'native');

/**
 * The training layout that is faster on `backend` (bench/supernet-rnn.ts, 12 nodes, H 200, one
 * thread). tfjs-node: grouping cuts a 16-row step's kernel calls 15,338 → 12,263 and takes
 * training 965 → 1,167 tokens/s. wasm: calls cost little there, and its row-mean products grow
 * dearer with width (50 → 95 ms a step), so grouping gains nothing (32 rows: 1,116–1,130 → 973–1,076).
 */
export const trainingLayoutFor = (backend: string): TrainingLayout => (backend === 'wasm' ? 'nodes' : 'siblings');

/** Cuts rows and column halves (see Slicing); index tensors are cached for the cutter's lifetime (one window, inside its tidy). */
class RowCutter {
  private readonly indexCache = new Map<string, tf.Tensor>();

  constructor(private readonly slicing: Slicing = slicingFor(tf.getBackend())) {}

  /** Rows first .. first + count − 1 of a 2-D tensor. */
  rows(x: tf.Tensor, first: number, count: number): tf.Tensor {
    if (this.slicing === 'native') return tf.slice(x, [first, 0], [count, x.shape[1]!]);
    return tf.gatherND(x, this.indices(first, count, 1));
  }

  /** The T blocks of `rows` rows of x [T·rows, C] (a window's time steps): on native slicing one reshape and one unstack, not T slices. */
  steps(x: tf.Tensor, rows: number): tf.Tensor[] {
    const T = x.shape[0]! / rows;
    if (this.slicing === 'native') return tf.unstack(tf.reshape(x, [T, rows, x.shape[1]!]));
    return Array.from({ length: T }, (_, t) => this.rows(x, t * rows, rows));
  }

  /** The column halves [x[:, :H], x[:, H:]] of x [B, 2H]. */
  halves(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
    return this.columnBlocks(x, 2) as [tf.Tensor, tf.Tensor];
  }

  /** x [B, n·W] cut into its n column blocks [B, W], left to right. */
  columnBlocks(x: tf.Tensor, n: number): tf.Tensor[] {
    if (this.slicing === 'native') return tf.split(x, n, 1);
    const [B, width] = x.shape as [number, number];
    const rows = tf.reshape(x, [n * B, width / n]);
    return Array.from({ length: n }, (_, i) => tf.gatherND(rows, this.indices(i, B, n)));
  }

  private indices(first: number, count: number, stride: number): tf.Tensor {
    const key = `${first}:${count}:${stride}`;
    let indices = this.indexCache.get(key);
    if (!indices) {
      indices = tf.tensor2d(Int32Array.from({ length: count }, (_, r) => first + r * stride), [count, 1], 'int32');
      this.indexCache.set(key, indices);
    }
    return indices;
  }
}

/**
 * One of E's search-mode batch norms (E `ptb_ops.batch_norm`): a trained per-feature scale and
 * offset, and the moving statistics that evaluation normalises with. Training normalises with
 * the batch's own statistics at every time step.
 */
export interface BatchNormTensors<T extends tf.Tensor = tf.Tensor> {
  scale: T;
  offset: T;
  movingMean: T;
  movingVariance: T;
}

/** E's ε: 1, not the usual 1e-5, so a layer whose variance is far below 1 is only centred. */
export const BN_EPSILON = 1;
/** E's moving-average decay, applied once per time step. */
export const BN_DECAY = 0.999;

/** What training normalises with: a norm's trained scale and offset. */
type NormAffine = Pick<BatchNormTensors, 'scale' | 'offset'>;

/** Sums and means over the rows of x [R, C], as [1, C] (see Slicing; 'gather' multiplies by a cached row of ones, and every mean by one of 1/R). */
class ColumnReducer {
  private readonly rowCache = new Map<string, tf.Tensor>();

  constructor(private readonly slicing: Slicing = slicingFor(tf.getBackend())) {}

  /** A product on every backend: tfjs-node's Mean also casts its input and uploads its axes (40 µs at [16,400] against 21). */
  mean(x: tf.Tensor): tf.Tensor {
    return tf.matMul(this.row(x.shape[0]!, true), x);
  }

  sum(x: tf.Tensor): tf.Tensor {
    return this.slicing === 'native' ? tf.sum(x, 0, true) : tf.matMul(this.row(x.shape[0]!, false), x);
  }

  private row(length: number, averaging: boolean): tf.Tensor {
    const key = `${length}:${averaging}`;
    let row = this.rowCache.get(key);
    if (!row) {
      row = tf.fill([1, length], averaging ? 1 / length : 1);
      this.rowCache.set(key, row);
    }
    return row;
  }
}

/**
 * One batch norm on batch statistics over a training window: `forward` at each step in time
 * order, `backward` at each step in reverse, then the window's scale and offset gradients and
 * each step's statistics (for the moving averages).
 */
export interface WindowNorm {
  forward(x: tf.Tensor): tf.Tensor;
  backward(t: number, dy: tf.Tensor): tf.Tensor;
  /** dL/dscale and dL/doffset summed over the window, [C]. */
  gradients(): NormGradients;
  /** Each step's batch mean and biased variance (as tf.nn.moments), [T, C]. */
  statistics(): { mean: tf.Tensor; variance: tf.Tensor };
}

/** What the backward pass needs of one batch norm at one step, and the statistics for the moving averages. */
interface NormTrace {
  normalised: tf.Tensor;
  invStd: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

/** A batch norm of tfjs ops, on every backend: 9 kernel calls forward, 8 backward. */
class ComposedNorm implements WindowNorm {
  private readonly steps: NormTrace[] = [];
  /** dL/dy of each step, latest step first. */
  private readonly dOutputs: tf.Tensor[] = [];

  constructor(
    private readonly bn: NormAffine,
    private readonly reduce: ColumnReducer,
  ) {}

  forward(x: tf.Tensor): tf.Tensor {
    const mean = this.reduce.mean(x);
    const centred = tf.sub(x, mean);
    const variance = this.reduce.mean(tf.square(centred));
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const normalised = tf.mul(centred, invStd);
    this.steps.push({ normalised, invStd, mean, variance });
    return tf.add(tf.mul(normalised, this.bn.scale), this.bn.offset);
  }

  /** invStd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = γ·dy. */
  backward(t: number, dy: tf.Tensor): tf.Tensor {
    this.dOutputs.push(dy);
    const { normalised, invStd } = this.steps[t]!;
    const dNormalised = tf.mul(dy, this.bn.scale);
    const meanGrad = this.reduce.mean(dNormalised);
    const meanProjection = this.reduce.mean(tf.mul(dNormalised, normalised));
    return tf.mul(tf.sub(tf.sub(dNormalised, meanGrad), tf.mul(normalised, meanProjection)), invStd);
  }

  /** Σ dy ⊙ x̂ and Σ dy over the whole window at once. */
  gradients(): NormGradients {
    const dy = tf.concat([...this.dOutputs].reverse(), 0);
    const normalised = tf.concat(
      this.steps.map((n) => n.normalised),
      0,
    );
    const width = [dy.shape[1]!];
    return { scale: tf.reshape(this.reduce.sum(tf.mul(dy, normalised)), width), offset: tf.reshape(this.reduce.sum(dy), width) };
  }

  statistics(): { mean: tf.Tensor; variance: tf.Tensor } {
    return { mean: tf.concat(this.steps.map((n) => n.mean)), variance: tf.concat(this.steps.map((n) => n.variance)) };
  }
}

/** An attribute of a TensorFlow op as tfjs-node's binding takes it. */
interface OpAttribute {
  name: string;
  type: number;
  value: number | string | boolean;
}

/** What FusedNorm uses of tfjs-node's backend: its binding's constants and raw op execution. */
interface TensorflowOps {
  binding: { TF_ATTR_TYPE: number; TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_FLOAT: number };
  executeMultipleOutputs(name: string, attributes: OpAttribute[], inputs: tf.Tensor[], outputs: number): tf.Tensor[];
}

/** tfjs-node's backend when it is the active one, else undefined. */
function tensorflowOps(): TensorflowOps | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const backend = tf.backend() as unknown as Partial<TensorflowOps>;
  return typeof backend.executeMultipleOutputs === 'function' && backend.binding ? (backend as TensorflowOps) : undefined;
}

/**
 * TensorFlow's FusedBatchNormV3 and FusedBatchNormGradV3 (training mode, NHWC over [B,1,1,C]),
 * run through tfjs-node's binding, which tfjs's kernels do not expose: 3 calls forward (with the
 * two reshapes) and 3 backward where ComposedNorm makes 9 and 8; [16,800]: 112 against 201 µs
 * forward, 111 against 159 backward (one thread). The op's batch variance is Bessel-corrected (on
 * CPU and cuDNN alike), so the moving averages get it times (B − 1)/B, E's biased variance; its
 * saved variance is not used for that, since under cuDNN (tfjs-node-gpu) it holds 1/√(σ² + ε).
 */
class FusedNorm implements WindowNorm {
  private readonly gradientAttributes: OpAttribute[];
  private readonly forwardAttributes: OpAttribute[];
  private readonly noStatistics = tf.tensor1d([], 'float32');
  /** Per step: x as [B,1,1,C], the batch mean and corrected variance, what the gradient op reads back. */
  private readonly steps: { x: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor; saved: [tf.Tensor, tf.Tensor, tf.Tensor] }[] = [];
  private readonly dScales: tf.Tensor[] = [];
  private readonly dOffsets: tf.Tensor[] = [];

  constructor(
    private readonly bn: NormAffine,
    private readonly ops: TensorflowOps,
  ) {
    const { binding } = ops;
    this.gradientAttributes = [
      { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
      { name: 'U', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
      { name: 'epsilon', type: binding.TF_ATTR_FLOAT, value: BN_EPSILON },
      { name: 'data_format', type: binding.TF_ATTR_STRING, value: 'NHWC' },
      { name: 'is_training', type: binding.TF_ATTR_BOOL, value: true },
    ];
    this.forwardAttributes = [...this.gradientAttributes, { name: 'exponential_avg_factor', type: binding.TF_ATTR_FLOAT, value: 1 }];
  }

  forward(x: tf.Tensor): tf.Tensor {
    const [B, C] = x.shape as [number, number];
    const x4 = tf.reshape(x, [B, 1, 1, C]);
    const [y, mean, variance, ...saved] = this.ops.executeMultipleOutputs(
      'FusedBatchNormV3',
      this.forwardAttributes,
      [x4, this.bn.scale, this.bn.offset, this.noStatistics, this.noStatistics],
      6,
    ) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    this.steps.push({ x: x4, mean, variance, saved });
    return tf.reshape(y, [B, C]);
  }

  backward(t: number, dy: tf.Tensor): tf.Tensor {
    const { x, saved } = this.steps[t]!;
    const [dx, dScale, dOffset] = this.ops.executeMultipleOutputs(
      'FusedBatchNormGradV3',
      this.gradientAttributes,
      [tf.reshape(dy, x.shape), x, this.bn.scale, ...saved],
      5,
    ) as [tf.Tensor, tf.Tensor, tf.Tensor];
    this.dScales.push(dScale);
    this.dOffsets.push(dOffset);
    return tf.reshape(dx, dy.shape);
  }

  gradients(): NormGradients {
    const sum = (xs: tf.Tensor[]): tf.Tensor => (xs.length === 1 ? xs[0]! : tf.addN(xs));
    return { scale: sum(this.dScales), offset: sum(this.dOffsets) };
  }

  statistics(): { mean: tf.Tensor; variance: tf.Tensor } {
    const B = this.steps[0]!.x.shape[0]!;
    return { mean: tf.stack(this.steps.map((s) => s.mean)), variance: tf.mul(tf.stack(this.steps.map((s) => s.variance)), (B - 1) / B) };
  }
}

/** How training computes its batch norms: 'fused' (tfjs-node only) or 'composed' (see FusedNorm). */
export type NormKernels = 'composed' | 'fused';

/** A window's norms of `kind`, one per layer; 'fused' needs tfjs-node active. */
export function windowNorms(layers: readonly NormAffine[], kind: NormKernels, slicing: Slicing): WindowNorm[] {
  if (kind === 'composed') {
    const reduce = new ColumnReducer(slicing);
    return layers.map((bn) => new ComposedNorm(bn, reduce));
  }
  const ops = tensorflowOps();
  if (!ops) throw new Error('fused batch norms need the tensorflow backend (@tensorflow/tfjs-node)');
  return layers.map((bn) => new FusedNorm(bn, ops));
}

/** Fused norms where TensorFlow runs the ops, composed ones elsewhere. */
export const normKernelsFor = (): NormKernels => (tensorflowOps() ? 'fused' : 'composed');

/** A batch norm on moving statistics as the affine map x·a + b. */
function movingAffine(bn: BatchNormTensors): { a: tf.Tensor; b: tf.Tensor } {
  const a = tf.mul(bn.scale, tf.rsqrt(tf.add(bn.movingVariance, BN_EPSILON)));
  return { a, b: tf.sub(bn.offset, tf.mul(bn.movingMean, a)) };
}

/** What the backward pass needs of a node at one step: its activation output f, gate g = σ(c̃), and g⊙(f − s_p). */
interface NodeTrace {
  f: tf.Tensor;
  g: tf.Tensor;
  gatedDiff: tf.Tensor;
}

interface Trace {
  /** [t][j]. */
  nodes: NodeTrace[][];
  /** [g][t]: group g's matMul input, (s_p ⊙ m_h), or (h_{t−1} ⊙ m_h) for node 0's recurrent half. */
  inputs: tf.Tensor[][];
}

/**
 * Nodes that training computes with one product: those reading the same node, in order of that
 * node (so a group's input exists before it), node 0 (parent −1, it reads x_t and h_{t−1}) first.
 * Side by side their matrices are one [H, k·2H] product, their batch norms one norm over its
 * columns (the statistics are per column either way) and their pre-activations one split, so a
 * group costs the calls of a node (see TrainingLayout).
 */
interface ProductGroup {
  parent: number;
  children: number[];
}

/**
 * How training arranges a cell's products: 'siblings' groups the nodes reading the same node;
 * 'nodes' gives each node its own product, norm and split. The same values either way
 * (test/supernet-rnn.test.ts); the arrangement is chosen per backend by bench/supernet-rnn.ts.
 */
export type TrainingLayout = 'nodes' | 'siblings';

function productGroups(plan: CellPlan, layout: TrainingLayout): ProductGroup[] {
  if (layout === 'nodes') return plan.prev.map((parent, j) => ({ parent, children: [j] }));
  return [{ parent: -1, children: [0] }, ...siblingGroups(plan)];
}

/** Side by side along axis `axis` (tensors of nodes, in a group's order); one tensor is itself. */
const sideBySide = (tensors: tf.Tensor[], axis: number): tf.Tensor => (tensors.length === 1 ? tensors[0]! : tf.concat(tensors, axis));

/** A group's tensor cut back into its k nodes' along `axis`. */
const perChild = (x: tf.Tensor, k: number, axis: number): tf.Tensor[] => (k === 1 ? [x] : tf.split(x, k, axis));

/** A window's weights by product group: node 0's input rows [H,2H], and each group's matrix (node 0's: its hidden rows), [H, k·2H]. */
interface GroupedWeights {
  inputRows: tf.Tensor;
  matrices: tf.Tensor[];
}

function groupWeights(groups: readonly ProductGroup[], weights: readonly tf.Tensor[], cut: RowCutter): GroupedWeights {
  const H = weights[0]!.shape[0]! / 2;
  return {
    inputRows: cut.rows(weights[0]!, 0, H),
    matrices: groups.map(({ parent, children }) =>
      parent < 0 ? cut.rows(weights[0]!, H, H) : sideBySide(children.map((j) => weights[j]!), 1),
    ),
  };
}

/**
 * The cell over a window. `weights[0]` is W_prev [2H,2H] ([x, h]·W_prev), `weights[j]` W_j [H,2H],
 * arranged by `groups`; `embedded` [T·B,H] is the (masked) embedding. Node 0's input half of all
 * T steps is one matMul. With `normalise`, each group's pre-activations and the output h_t go
 * through their batch norm, as E's search cell (the normalised h_t is also what the next step reads).
 */
function unroll(
  plan: CellPlan,
  groups: readonly ProductGroup[],
  { inputRows, matrices }: GroupedWeights,
  embedded: tf.Tensor,
  initial: tf.Tensor,
  hiddenMask: tf.Tensor | undefined,
  norms: readonly WindowNorm[] | undefined,
  slicing: Slicing,
  trace?: Trace,
): { outputs: tf.Tensor; final: tf.Tensor } {
  const B = initial.shape[0]!;
  const T = embedded.shape[0]! / B;
  const cut = new RowCutter(slicing);
  const inputProjections = cut.steps(tf.matMul(embedded, inputRows), B);
  const masked = (s: tf.Tensor): tf.Tensor => (hiddenMask ? tf.mul(s, hiddenMask) : s);
  const ends = plan.looseEnds;
  let h = initial;
  const outputs: tf.Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const s: tf.Tensor[] = [];
    const maskedNode: tf.Tensor[] = [];
    const nodeTraces: NodeTrace[] = [];
    groups.forEach(({ parent, children }, g) => {
      const sp = parent < 0 ? h : s[parent]!;
      const input = parent < 0 ? masked(h) : (maskedNode[parent] ??= masked(sp));
      const product = tf.matMul(input, matrices[g]!);
      const preActivations = parent < 0 ? tf.add(product, inputProjections[t]!) : product;
      const blocks = cut.columnBlocks(norms ? norms[g]!.forward(preActivations) : preActivations, 2 * children.length);
      children.forEach((j, i) => {
        const f = RNN_ACTIVATION_FNS[plan.act[j]!](blocks[2 * i]!);
        const gate = tf.sigmoid(blocks[2 * i + 1]!);
        // Highway: s_j = s_p + σ(c̃) ⊙ (f(h̃) − s_p).
        const gatedDiff = tf.mul(gate, tf.sub(f, sp));
        s[j] = tf.add(sp, gatedDiff);
        nodeTraces[j] = { f, g: gate, gatedDiff };
      });
      trace?.inputs[g]!.push(input);
    });
    trace?.nodes.push(nodeTraces);
    const mean = ends.length === 1 ? s[ends[0]!]! : tf.mul(tf.addN(ends.map((e) => s[e]!)), 1 / ends.length);
    h = norms ? norms[groups.length]!.forward(mean) : mean;
    outputs.push(h);
  }
  return { outputs: tf.concat(outputs, 0), final: h };
}

/**
 * aᵀ·b. On wasm aᵀ is laid out first: its transposed products are ≈10× slower than plain ones
 * (TFJS-BACKENDS.md §2–3). TensorFlow takes the flag at no cost, which saves the transpose
 * (tfjs-node, [560,200]ᵀ·[560,400]: 828 µs against 1,146 with the transpose).
 */
function transposedProduct(a: tf.Tensor, b: tf.Tensor, slicing: Slicing): tf.Tensor {
  return slicing === 'native' ? tf.matMul(a, b, true, false) : tf.matMul(tf.transpose(a), b);
}

/** Σ of a node's output gradients: direct (highway, output) ones, plus matMul-input ones, which pass the hidden mask. */
function totalGradient(direct: tf.Tensor[], viaInput: tf.Tensor[], hiddenMask: tf.Tensor | undefined): tf.Tensor {
  const parts = [...direct];
  if (viaInput.length > 0) {
    const sum = viaInput.length === 1 ? viaInput[0]! : tf.addN(viaInput);
    parts.push(hiddenMask ? tf.mul(sum, hiddenMask) : sum);
  }
  return parts.length === 1 ? parts[0]! : tf.addN(parts);
}

/** Gradients of one batch norm's scale and offset. */
export interface NormGradients {
  scale: tf.Tensor;
  offset: tf.Tensor;
}

/**
 * Backpropagation through the window, truncated at the initial state as in E (which carries it
 * with stop_gradient). Returns the gradients of the weights (per node, layout of the cell's
 * `weights`) and of `embedded`; the batch norms (per group, then the output) keep their own.
 */
function backprop(
  plan: CellPlan,
  groups: readonly ProductGroup[],
  { inputRows, matrices }: GroupedWeights,
  embedded: tf.Tensor,
  trace: Trace,
  dOutputs: tf.Tensor,
  hiddenMask: tf.Tensor | undefined,
  norms: readonly WindowNorm[] | undefined,
  slicing: Slicing,
): { dWeights: tf.Tensor[]; dEmbedded: tf.Tensor } {
  const T = trace.nodes.length;
  const B = embedded.shape[0]! / T;
  const cut = new RowCutter(slicing);
  const transposed = matrices.map((m) => tf.transpose(m));
  const ends = plan.looseEnds;
  const dPre: tf.Tensor[][] = groups.map(() => []);
  /** Through batch norm `layer` at step t when there are norms, else unchanged. */
  const throughNorm = (layer: number, t: number, dy: tf.Tensor): tf.Tensor => (norms ? norms[layer]!.backward(t, dy) : dy);
  let dCarry: tf.Tensor | undefined;
  const dOutputSteps = cut.steps(dOutputs, B);
  for (let t = T - 1; t >= 0; t--) {
    const direct: tf.Tensor[][] = plan.prev.map(() => []);
    const viaInput: tf.Tensor[][] = plan.prev.map(() => []);
    const dOut = dOutputSteps[t]!;
    const dh = throughNorm(groups.length, t, dCarry ? tf.add(dOut, dCarry) : dOut);
    const share = ends.length === 1 ? dh : tf.mul(dh, 1 / ends.length);
    for (const e of ends) direct[e]!.push(share);
    // Reverse group order: every node's readers are done before it.
    for (let g = groups.length - 1; g >= 0; g--) {
      const { parent, children } = groups[g]!;
      const dBlocks: tf.Tensor[] = [];
      const dThrough: tf.Tensor[] = [];
      for (const j of children) {
        const { f, g: gate, gatedDiff } = trace.nodes[t]![j]!;
        const ds = totalGradient(direct[j]!, viaInput[j]!, hiddenMask);
        const df = tf.mul(ds, gate);
        const through = tf.sub(ds, df); // ∂s/∂s_p = 1 − g
        // ∂s/∂c̃ = (f − s_p) ⊙ g ⊙ (1 − g), so dc̃ = ds ⊙ (1 − g) ⊙ g ⊙ (f − s_p).
        dBlocks.push(RNN_ACTIVATION_GRADS[plan.act[j]!](f, df), tf.mul(through, gatedDiff));
        dThrough.push(through);
      }
      const dp = throughNorm(g, t, tf.concat(dBlocks, 1));
      dPre[g]!.push(dp);
      if (parent < 0 && t === 0) continue;
      const dInput = tf.matMul(dp, transposed[g]!);
      if (parent < 0) dCarry = tf.add(dThrough[0]!, hiddenMask ? tf.mul(dInput, hiddenMask) : dInput);
      else {
        direct[parent]!.push(...dThrough);
        viaInput[parent]!.push(dInput);
      }
    }
  }
  // One product per group over the whole window: dW_g = Σ_t input_{g,t}ᵀ · dpre_{g,t}, cut per node.
  const dPreInTime = dPre.map((steps) => tf.concat(steps.reverse(), 0));
  const dWeights: tf.Tensor[] = [];
  groups.forEach(({ children }, g) => {
    const dMatrix = transposedProduct(tf.concat(trace.inputs[g]!, 0), dPreInTime[g]!, slicing);
    perChild(dMatrix, children.length, 1).forEach((d, i) => (dWeights[children[i]!] = d));
  });
  // groups[0] is node 0 in both layouts.
  dWeights[0] = tf.concat([transposedProduct(embedded, dPreInTime[0]!, slicing), dWeights[0]!], 0);
  return { dWeights, dEmbedded: tf.matMul(dPreInTime[0]!, tf.transpose(inputRows)) };
}

/** The smallest normal float32: caps a token's loss at 87.3 where its probability underflows. */
const MIN_PROBABILITY = 1.1754944e-38;

/** Mean cross-entropy of `targets` under `probs` [N,V], read off one gathered probability per position. */
function crossEntropy(probs: tf.Tensor, targets: Int32Array): tf.Scalar {
  const [N, V] = probs.shape;
  const flat = Int32Array.from(targets, (y, n) => n * V + y);
  const picked = tf.gather(tf.reshape(probs, [N * V]), tf.tensor1d(flat, 'int32'));
  return tf.neg(tf.mean(tf.log(tf.maximum(picked, MIN_PROBABILITY))));
}

/**
 * Softmax over the tied logits h·Eᵀ (no bias, ENAS.md §1c). On wasm Eᵀ is laid out first, so the
 * product is untransposed (TFJS-BACKENDS.md §2–3); TensorFlow's transposed product is faster than
 * the transpose alone (tfjs-node, [1120,200]·[10000,200]ᵀ: 46.8 ms against 44.5 + 3.9).
 */
function tiedSoftmax(top: tf.Tensor, embedding: tf.Tensor, slicing: Slicing): tf.Tensor {
  return tf.softmax(slicing === 'native' ? tf.matMul(top, embedding, false, true) : tf.matMul(top, tf.transpose(embedding)));
}

/** Embedding rows of a window's inputs, [T·B, H] time-major. */
function lookup(embedding: tf.Tensor, ids: Int32Array): tf.Tensor {
  return tf.gatherND(embedding, tf.tensor2d(ids, [ids.length, 1], 'int32'));
}

/**
 * Mean per-token loss of a window from a zero state, without dropout (ENAS.md §2: the reward's
 * window); batch norms use their moving statistics, as E's evaluation graphs. Its forward pass is
 * not unroll's: with nothing to keep for a backward pass it folds the norms into the weights
 * (test/supernet-rnn.test.ts holds both to the same float64 formulas), and with native slicing it
 * stacks each node's halves and batches sibling nodes (stackedNodes).
 */
export function windowLoss(
  plan: CellPlan,
  embedding: tf.Tensor,
  weights: readonly tf.Tensor[],
  window: TextWindow,
  norms?: readonly BatchNormTensors[],
  slicing = slicingFor(tf.getBackend()),
): tf.Scalar {
  const H = embedding.shape[1]!;
  const B = window.batchSize;
  // On moving statistics a node's norm is an affine map of its product's columns: folded into the
  // node's matrix and a bias once per window. The output norm stays a map of its own.
  const affine = norms?.map(movingAffine);
  const cell: FoldedCell = {
    plan,
    weights: weights.map((w, j) => (affine ? tf.mul(w, affine[j]!.a) : w)),
    biases: affine?.slice(0, plan.prev.length).map(({ b }) => tf.reshape(b, [1, 2 * H])),
    embedded: lookup(embedding, window.inputs),
    batchSize: B,
  };
  const nodes = slicing === 'native' ? stackedNodes(cell) : slicedNodes(cell, new RowCutter(slicing));
  const outputNorm = affine?.[plan.prev.length];
  let h: tf.Tensor = tf.zeros([B, H]);
  const outputs: tf.Tensor[] = [];
  for (let t = 0; t < window.inputs.length / B; t++) {
    const s = nodes(h, t);
    const ends = plan.looseEnds;
    const mean = ends.length === 1 ? s[ends[0]!]! : tf.mul(tf.addN(ends.map((e) => s[e]!)), 1 / ends.length);
    h = outputNorm ? tf.add(tf.mul(mean, outputNorm.a), outputNorm.b) : mean;
    outputs.push(h);
  }
  return crossEntropy(tiedSoftmax(tf.concat(outputs, 0), embedding, slicing), window.targets);
}

/** An evaluation cell with its norms folded in: W_j [·,2H] and biases [1,2H] (none without norms), and the window's embedded inputs [T·B,H]. */
interface FoldedCell {
  plan: CellPlan;
  weights: readonly tf.Tensor[];
  biases?: readonly tf.Tensor[];
  embedded: tf.Tensor;
  batchSize: number;
}

/** Every node's state s_j [B,H] at step t from h_{t−1}. */
type NodeStates = (h: tf.Tensor, t: number) => tf.Tensor[];

/** Highway: s_j = s_p + σ(c̃) ⊙ (f(h̃) − s_p). */
const highway = (sp: tf.Tensor, f: tf.Tensor, gateLogit: tf.Tensor): tf.Tensor => tf.add(sp, tf.mul(tf.sigmoid(gateLogit), tf.sub(f, sp)));

/** One node at a time, halves cut by `cut` (wasm, where stacking and batching siblings cost more than the calls they save: 3,830 → 2,800 tokens/s). */
function slicedNodes({ plan, weights, biases, embedded, batchSize: B }: FoldedCell, cut: RowCutter): NodeStates {
  const H = embedded.shape[1]!;
  const projections = tf.matMul(embedded, cut.rows(weights[0]!, 0, H));
  const inputProjections = cut.steps(biases ? tf.add(projections, biases[0]!) : projections, B);
  const hiddenRows = cut.rows(weights[0]!, H, H);
  return (h, t) => {
    const s: tf.Tensor[] = [];
    plan.prev.forEach((p, j) => {
      const sp = j === 0 ? h : s[p]!;
      const product = j === 0 ? tf.add(tf.matMul(h, hiddenRows), inputProjections[t]!) : tf.matMul(sp, weights[j]!);
      const [candidate, gateLogit] = cut.halves(biases && j > 0 ? tf.add(product, biases[j]!) : product);
      s[j] = highway(sp, RNN_ACTIVATION_FNS[plan.act[j]!](candidate), gateLogit);
    });
    return s;
  };
}

/**
 * Native slicing (tfjs-node, cpu): each node's matrix as its candidate and gate halves stacked,
 * [2,1,H,H], and siblings (nodes reading the same node) side by side, [2,k,H,H], so one
 * broadcasting product gives all their halves as [2,k,B,H] and unstacking cuts them. On tfjs-node
 * a split costs 56 µs (it uploads its sizes and axis every call), an unstack 20; node 0's input
 * products of all T steps are one product unstacked once. One window there (32 rows, one thread):
 * 172–179 → 162 ms, where a product per parent and a split per product had cost 510 splits.
 */
function stackedNodes({ plan, weights, biases, embedded, batchSize: B }: FoldedCell): NodeStates {
  const H = embedded.shape[1]!;
  const T = embedded.shape[0]! / B;
  // Matrices [R,2H] (or biases [1,2H]) of some nodes → [2,k,R,H]: candidate halves, then gate halves.
  const stacked = (matrices: tf.Tensor[]): tf.Tensor => {
    const halves = matrices.map((m) => tf.split(m, 2, 1) as [tf.Tensor, tf.Tensor]);
    return tf.stack([tf.stack(halves.map(([candidate]) => candidate)), tf.stack(halves.map(([, gate]) => gate))]);
  };
  const [inputRows, hiddenRows] = tf.split(weights[0]!, 2, 0) as [tf.Tensor, tf.Tensor];
  const projections = tf.matMul(embedded, stacked([inputRows]));
  const inputSteps = tf.unstack(tf.reshape(biases ? tf.add(projections, stacked([biases[0]!])) : projections, [2, 1, T, B, H]), 2);
  const hidden = stacked([hiddenRows]);
  const groups = siblingGroups(plan).map(({ parent, children }) => ({
    parent,
    children,
    acts: children.map((c) => RNN_ACTIVATION_FNS[plan.act[c]!]),
    matrix: stacked(children.map((c) => weights[c]!)),
    bias: biases && stacked(children.map((c) => biases[c]!)),
  }));
  // [2,k,B,H] products of k nodes reading sp → their states.
  const nodesOf = (product: tf.Tensor, sp: tf.Tensor, acts: ((x: tf.Tensor) => tf.Tensor)[]): tf.Tensor[] => {
    const [candidate, gateLogit] = tf.unstack(product) as [tf.Tensor, tf.Tensor];
    const f = acts.every((act) => act === acts[0]) ? acts[0]!(candidate) : tf.stack(tf.unstack(candidate).map((c, i) => acts[i]!(c)));
    return tf.unstack(highway(sp, f, gateLogit));
  };
  const firstAct = [RNN_ACTIVATION_FNS[plan.act[0]!]];
  return (h, t) => {
    const s: tf.Tensor[] = nodesOf(tf.add(tf.matMul(h, hidden), inputSteps[t]!), h, firstAct);
    for (const { parent, children, acts, matrix, bias } of groups) {
      const product = tf.matMul(s[parent]!, matrix);
      nodesOf(bias ? tf.add(product, bias) : product, s[parent]!, acts).forEach((node, i) => (s[children[i]!] = node));
    }
    return s;
  };
}

/** Nodes 1… grouped by the node they read, in order of that node (so a group's input is computed before it). */
function siblingGroups(plan: CellPlan): { parent: number; children: number[] }[] {
  const groups = plan.prev.map((_, parent) => ({ parent, children: [] as number[] }));
  plan.prev.forEach((p, j) => j > 0 && groups[p]!.children.push(j));
  return groups.filter((group) => group.children.length > 0);
}

export interface WindowGradients {
  /** Mean cross-entropy per token, without regularisers. */
  loss: tf.Scalar;
  /** h of the last step, the next window's initial state. */
  final: tf.Tensor;
  dEmbedding: tf.Tensor;
  dWeights: tf.Tensor[];
  /** With batch norms: their gradients, and each step's batch mean and variance, [T, C] per norm. */
  dNorms?: NormGradients[];
  batchStats?: { mean: tf.Tensor; variance: tf.Tensor }[];
}

/**
 * Loss and gradients of one training window: embedding → word and input dropout → cell from
 * `initial` (with batch norms on batch statistics, if given) → output dropout → tied softmax;
 * plus the slowness term if β > 0. L2 is left to clippedSgd.
 */
export function windowGradients(
  plan: CellPlan,
  embedding: tf.Tensor,
  weights: readonly tf.Tensor[],
  window: TextWindow,
  initial: tf.Tensor,
  masks: WindowMasks,
  slowness: number,
  norms?: readonly BatchNormTensors[],
  slicing = slicingFor(tf.getBackend()),
  layout = trainingLayoutFor(tf.getBackend()),
  normKernels = normKernelsFor(),
): WindowGradients {
  const { batchSize: B, inputs, targets } = window;
  const [V, H] = embedding.shape;
  const N = inputs.length;
  const rows = lookup(embedding, inputs);
  const embedded = masks.input ? tf.mul(rows, masks.input) : rows;
  const groups = productGroups(plan, layout);
  const grouped = groupWeights(groups, weights, new RowCutter(slicing));
  // Norm layers as training runs them: each group's nodes' side by side, then the output's.
  const layers: WindowNorm[] | undefined =
    norms &&
    windowNorms(
      [
        ...groups.map(({ children }) => ({
          scale: sideBySide(children.map((j) => norms[j]!.scale), 0),
          offset: sideBySide(children.map((j) => norms[j]!.offset), 0),
        })),
        norms[plan.prev.length]!,
      ],
      normKernels,
      slicing,
    );
  const trace: Trace = { nodes: [], inputs: groups.map(() => []) };
  const { outputs, final } = unroll(plan, groups, grouped, embedded, initial, masks.hidden, layers, slicing, trace);
  const top = masks.output ? tf.mul(outputs, masks.output) : outputs;
  const probs = tiedSoftmax(top, embedding, slicing);
  const loss = crossEntropy(probs, targets);

  // d(mean CE)/d logits = (P − onehot(y))/N. The one-hot half never becomes a dense [N,V]
  // tensor: its products with E and with h are a row gather and a segment sum.
  const scaledTop = tf.mul(top, 1 / N);
  const dTop = tf.mul(tf.sub(tf.matMul(probs, embedding), lookup(embedding, targets)), 1 / N);
  let dOutputs = masks.output ? tf.mul(dTop, masks.output) : dTop;
  if (slowness > 0 && window.steps > 1) {
    // β/((T−1)B)·Σ‖h_t − h_{t−1}‖²: h_t gets +c·(h_t − h_{t−1}) and −c·(h_{t+1} − h_t), c = 2β/((T−1)B).
    const cut = new RowCutter(slicing);
    const diff = tf.sub(cut.rows(outputs, B, N - B), cut.rows(outputs, 0, N - B));
    const zeros = tf.zeros([B, H]);
    const c = (2 * slowness) / (N - B);
    dOutputs = tf.add(dOutputs, tf.mul(tf.sub(tf.concat([zeros, diff], 0), tf.concat([diff, zeros], 0)), c));
  }
  const { dWeights, dEmbedded } = backprop(plan, groups, grouped, embedded, trace, dOutputs, masks.hidden, layers, slicing);
  const dRows = masks.input ? tf.mul(dEmbedded, masks.input) : dEmbedded;
  const ids = new Int32Array(2 * N);
  ids.set(inputs);
  ids.set(targets, N);
  const sparse = tf.unsortedSegmentSum(tf.concat([dRows, tf.neg(scaledTop)], 0), tf.tensor1d(ids, 'int32'), V);
  // Pᵀ·h: [V,N]·[N,H] runs ≈20% faster on wasm than (hᵀ·P)ᵀ, whose right operand is the [N,V]
  // one that XNNPACK repacks.
  const dense = transposedProduct(probs, scaledTop, slicing);
  if (!layers) return { loss, final, dEmbedding: tf.add(dense, sparse), dWeights };
  // Per norm of the cell again (its nodes, then the output): a group's columns cut back into its nodes'.
  const byNode = <T>(perLayer: readonly T[], cutLayer: (x: T, k: number) => T[]): T[] => {
    const nodes: T[] = [];
    groups.forEach(({ children }, g) => cutLayer(perLayer[g]!, children.length).forEach((x, i) => (nodes[children[i]!] = x)));
    return [...nodes, perLayer[groups.length]!];
  };
  const batchStats = byNode(
    layers.map((norm) => norm.statistics()),
    ({ mean, variance }, k) => {
      const variances = perChild(variance, k, 1);
      return perChild(mean, k, 1).map((m, i) => ({ mean: m, variance: variances[i]! }));
    },
  );
  const dNorms = byNode(
    layers.map((norm) => norm.gradients()),
    ({ scale, offset }, k) => {
      const offsets = perChild(offset, k, 0);
      return perChild(scale, k, 0).map((d, i) => ({ scale: d, offset: offsets[i]! }));
    },
  );
  return { loss, final, dEmbedding: tf.add(dense, sparse), dWeights, dNorms, batchStats };
}

/**
 * Plain SGD (no momentum) with E's L2 term added to the gradient before clipping by global norm,
 * as E's get_train_ops and LM do. Returns the new values of `params`.
 */
function clippedSgd(
  params: readonly tf.Tensor[],
  grads: readonly tf.Tensor[],
  lr: number,
  reg: Pick<RnnRegularisation, 'gradClip' | 'l2'>,
): tf.Tensor[] {
  const total = grads.map((g, i) => (reg.l2 > 0 ? tf.add(g, tf.mul(params[i]!, 2 * reg.l2)) : g));
  let step: tf.Scalar = tf.scalar(lr);
  if (reg.gradClip > 0) {
    const norm = tf.sqrt(tf.addN(total.map((g) => tf.sum(tf.square(g)))));
    step = tf.mul(step, tf.div(reg.gradClip, tf.maximum(norm, reg.gradClip)));
  }
  return params.map((p, i) => tf.sub(p, tf.mul(total[i]!, step)));
}

/** Node j's weight matrix: `rows` rows of `variable` from `firstRow` (node 0: [2H,2H], others [H,2H]). */
export interface RowBlock {
  variable: tf.Variable;
  firstRow: number;
  rows: number;
}

function readBlock({ variable, firstRow, rows }: RowBlock): tf.Tensor {
  return rows === variable.shape[0] ? variable : new RowCutter().rows(variable, firstRow, rows);
}

/**
 * Replaces the block's rows and nothing else; the other rows are copied bit for bit. A row
 * scatter, because slicing out the rows around the block costs ≈50× more on wasm.
 */
function writeBlock({ variable, firstRow, rows }: RowBlock, value: tf.Tensor): void {
  if (rows === variable.shape[0]) {
    variable.assign(value);
    return;
  }
  const indices = tf.tensor2d(Int32Array.from({ length: rows }, (_, r) => firstRow + r), [rows, 1], 'int32');
  variable.assign(tf.tensorScatterUpdate(variable, indices, value));
}

/** U(±range) values from the model's own stream, so an init is the same on every backend. */
export function uniformVariable(random: Random, shape: number[], range: number): tf.Variable {
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * random.next() - 1) * range);
  return tf.variable(tf.tensor(values, shape));
}

/** E's assign_moving_average once per time step, T steps at once: m ← d^T·m + Σ_t (1 − d)·d^(T−1−t)·stat_t. */
function movingAverage(moving: tf.Tensor, stats: tf.Tensor): tf.Tensor {
  const T = stats.shape[0]!;
  const weights = Float32Array.from({ length: T }, (_, t) => (1 - BN_DECAY) * BN_DECAY ** (T - 1 - t));
  const recent = tf.reshape(tf.matMul(tf.tensor2d(weights, [1, T]), stats), moving.shape);
  return tf.add(tf.mul(moving, BN_DECAY ** T), recent);
}

/** The value of a scalar tensor, which is disposed. */
function readScalar(x: tf.Scalar): number {
  const value = x.dataSync()[0]!;
  x.dispose();
  return value;
}

/** The cell of a genotype as a model stores it: the plan, where each node's weight matrix lives, and E's batch norms if any. */
export interface CellParameters {
  plan: CellPlan;
  blocks: RowBlock[];
  /** Nodes 0..N−1 (on [2H] pre-activations), then the output ([H]). */
  norms?: BatchNormTensors<tf.Variable>[];
}

export interface RecurrentModelOptions {
  keep: RnnKeepProbs;
  reg: RnnRegularisation;
}

/** Throws unless the sizes are positive integers, keep probabilities in (0, 1] and regularisers non-negative. */
export function checkRecurrentConfig(sizes: Record<string, number>, { keep, reg }: RecurrentModelOptions): void {
  for (const [name, v] of Object.entries(sizes))
    if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`${name} ${v} must be a positive integer`);
  for (const [name, p] of Object.entries(keep))
    if (!(p > 0 && p <= 1)) throw new RangeError(`keep.${name} ${p} must be in (0, 1]`);
  for (const name of ['gradClip', 'l2', 'slowness'] as const)
    if (!(reg[name] >= 0)) throw new RangeError(`${name} ${reg[name]} must be non-negative`);
}

/**
 * A language model on the ENAS cell with a tied embedding: the training loop shared by the
 * supernet and the fixed RNN. The hidden state is carried from one training window to the next
 * (ENAS.md §3, PTB) and is not part of `state`: the reference zeroes it at every epoch
 * boundary, where checkpoints are taken, and it depends on the batch size.
 */
export abstract class RecurrentLanguageModel implements TrainableModel<RnnGenotype> {
  abstract readonly state: ReadonlyMap<string, tf.Variable>;
  private carried?: tf.Tensor;
  /** State name by variable, for gradient names. */
  private stateNames?: Map<tf.Variable, string>;

  protected constructor(
    protected readonly embedding: tf.Variable,
    private readonly options: RecurrentModelOptions,
    /** The dropout masks' stream (TrainableModel.random, which checkpoints save). */
    readonly random: Random,
  ) {}

  /** The cell of `genotype` and the variables it uses. */
  protected abstract cell(genotype: RnnGenotype): CellParameters;

  get vocabSize(): number {
    return this.embedding.shape[0]!;
  }

  get hiddenSize(): number {
    return this.embedding.shape[1]!;
  }

  /** The carried hidden state [B,H] (a copy), or undefined after construction or resetState. */
  carriedState(): tf.Tensor | undefined {
    return this.carried?.clone();
  }

  trainStep(genotype: RnnGenotype, batch: Batch, lr: number): StepStats {
    const cell = this.cell(genotype);
    const loss = tf.tidy(() => {
      const step = this.windowStep(cell, batch);
      this.update(cell, step.params, step.grads, lr);
      return step.loss;
    });
    return { loss: readScalar(loss) };
  }

  /**
   * The forward and backward half of `trainStep` (trial/parallel.ts averages these over shards):
   * the gradients of the mean loss, before L2 and clipping, keyed by `gradientNames`, on the host.
   * The moving statistics and the carried hidden state are updated as in `trainStep`; the weights
   * are not.
   */
  computeGradients(genotype: RnnGenotype, batch: Batch): { grads: Map<string, Float32Array>; stats: StepStats } {
    const cell = this.cell(genotype);
    const names = this.gradientNames(cell);
    const { loss, grads } = tf.tidy(() => {
      const { loss, grads } = this.windowStep(cell, batch);
      return { loss, grads };
    });
    const host = new Map(names.map((name, i) => [name, grads[i]!.dataSync() as Float32Array]));
    tf.dispose(grads);
    return { grads: host, stats: { loss: readScalar(loss) } };
  }

  /** The update half of `trainStep`: L2, clipping and SGD of `genotype`'s parameters by the gradients `computeGradients` named. */
  applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number, genotype: RnnGenotype): void {
    const cell = this.cell(genotype);
    tf.tidy(() => {
      const params = this.parameters(cell);
      const tensors = this.gradientNames(cell).map((name, i) => {
        const values = grads.get(name);
        if (!values) throw new Error(`no gradient for ${name}`);
        return tf.tensor(values, params[i]!.shape);
      });
      this.update(cell, params, tensors, lr);
    });
  }

  /**
   * Names of the gradients of a cell's parameters, in `parameters` order: the state name of a
   * whole variable, `name[first:end]` for a node's row block of a shared one.
   */
  private gradientNames(cell: CellParameters): string[] {
    const nameOf = (variable: tf.Variable): string => {
      this.stateNames ??= new Map([...this.state].map(([name, v]) => [v, name]));
      return this.stateNames.get(variable)!;
    };
    return [
      'embedding',
      ...cell.blocks.map((b) => (b.rows === b.variable.shape[0] ? nameOf(b.variable) : `${nameOf(b.variable)}[${b.firstRow}:${b.firstRow + b.rows}]`)),
      ...(cell.norms ?? []).flatMap((bn) => [nameOf(bn.scale), nameOf(bn.offset)]),
    ];
  }

  /** What a step of `cell` trains, as tensors: the embedding, each node's block, the norms' scales and offsets. */
  private parameters(cell: CellParameters): tf.Tensor[] {
    return [this.embedding, ...cell.blocks.map(readBlock), ...(cell.norms ?? []).flatMap((bn) => [bn.scale, bn.offset])];
  }

  /**
   * Loss and gradients (in `parameters` order) of one window; updates the moving statistics and
   * carries the final hidden state. Runs inside the caller's tidy.
   */
  private windowStep(cell: CellParameters, batch: Batch): { loss: tf.Scalar; params: tf.Tensor[]; grads: tf.Tensor[] } {
    const { plan, blocks, norms } = cell;
    const window = readWindow(batch, this.vocabSize);
    if (this.carried && this.carried.shape[0] !== window.batchSize)
      throw new RangeError(
        `the hidden state is carried for batch size ${this.carried.shape[0]}, got ${window.batchSize}; call resetState() first`,
      );
    const masks = sampleMasks(this.random, window, this.hiddenSize, this.options.keep);
    const initial = this.carried ?? tf.zeros([window.batchSize, this.hiddenSize]);
    const params = this.parameters(cell);
    const weights = params.slice(1, 1 + blocks.length);
    const step = windowGradients(plan, this.embedding, weights, window, initial, masks, this.options.reg.slowness, norms);
    norms?.forEach((bn, i) => {
      bn.movingMean.assign(movingAverage(bn.movingMean, step.batchStats![i]!.mean));
      bn.movingVariance.assign(movingAverage(bn.movingVariance, step.batchStats![i]!.variance));
    });
    this.carried?.dispose();
    this.carried = tf.keep(step.final);
    const normGrads = (step.dNorms ?? []).flatMap((d) => [d.scale, d.offset]);
    return { loss: step.loss, params, grads: [step.dEmbedding, ...step.dWeights, ...normGrads] };
  }

  /** One clipped SGD step of `cell`'s parameters; the other rows of shared variables stay bit-identical. */
  private update(cell: CellParameters, params: readonly tf.Tensor[], grads: readonly tf.Tensor[], lr: number): void {
    const updated = clippedSgd(params, grads, lr, this.options.reg);
    this.embedding.assign(updated[0]!);
    cell.blocks.forEach((block, j) => writeBlock(block, updated[j + 1]!));
    (cell.norms ?? []).flatMap((bn) => [bn.scale, bn.offset]).forEach((variable, i) => variable.assign(updated[cell.blocks.length + 1 + i]!));
  }

  evaluate(genotype: RnnGenotype, batch: Batch): StepStats {
    const { plan, blocks, norms } = this.cell(genotype);
    const window = readWindow(batch, this.vocabSize);
    return { loss: readScalar(tf.tidy(() => windowLoss(plan, this.embedding, blocks.map(readBlock), window, norms))) };
  }

  resetState(): void {
    this.carried?.dispose();
    this.carried = undefined;
  }

  dispose(): void {
    this.resetState();
    for (const variable of this.state.values()) variable.dispose();
  }
}
