/*
 * The child optimizer of the CIFAR scripts (ENAS.md §3): SGD with Nesterov momentum 0.9 and L2
 * λ·Σw², and the cosine learning rate with warm restarts at epoch granularity. The supernets and
 * fixed networks call `apply` once per step; whoever drives training picks the lr with `cosineLr`.
 */
import { onBackend, type ModelVariable } from './nn.js';
import { assignValues, initialValues } from './store-tf.js';
import type { StoreTensors } from './store.js';

export interface NesterovOptions {
  /** λ of the loss term λ·Σw² (gradient 2λw, ENAS.md "Loss convention"). */
  l2: number;
  /** ENAS.md: momentum 0.9, Nesterov, for every CIFAR column. */
  momentum?: number;
}

/**
 * A state tensor that lives on the host only: an optimizer slot, which nothing but the host-side
 * update reads or writes. Keeping it out of the backend saves uploading half of a CNN's state
 * (5,228 of the micro supernet's 10,457 tensors) when a trial builds its model, and a tensor per
 * updated variable per step. Each update gives it a new array, so a `dataSync()` taken earlier
 * (readModelState) never changes under its holder.
 */
export class HostTensor {
  readonly trainable = false;
  readonly dtype = 'float32' as const;

  constructor(
    readonly shape: number[],
    private values: Float32Array,
  ) {}

  get size(): number {
    return this.values.length;
  }

  dataSync(): Float32Array {
    return this.values;
  }

  /** Takes `values` (of this tensor's size) as its value, without copying. */
  replace(values: Float32Array): void {
    if (values.length !== this.values.length) throw new Error(`host tensor of ${this.values.length} values given ${values.length}`);
    this.values = values;
  }

  dispose(): void {}
}

/**
 * TF's MomentumOptimizer with use_nesterov: g ← ∇ + 2λw; a ← μa + g; w ← w − lr·(g + μa).
 * No gradient clipping: the reference's clipping is a no-op (ENAS.md §3).
 *
 * The update runs on the host over typed arrays. A step touches hundreds of small variables, and
 * the eight or so tf kernels per variable would cost more in dispatch than the arithmetic. The
 * accumulators are HostTensors for the same reason.
 */
export class NesterovMomentum {
  private readonly momentum: number;
  /** By state name. */
  private readonly slots = new Map<string, { variable: ModelVariable; accumulator: HostTensor }>();

  constructor(private readonly options: NesterovOptions) {
    this.momentum = options.momentum ?? 0.9;
  }

  /**
   * Declares the accumulator `<name>/momentum` of every trainable variable, zero or from
   * `initial` (stored weights, see VariableStore); returns them by name.
   */
  addSlots(variables: ReadonlyMap<string, ModelVariable>, initial?: StoreTensors): Map<string, HostTensor> {
    const added = new Map<string, HostTensor>();
    for (const [name, variable] of variables) {
      if (!variable.trainable) continue;
      const slotName = `${name}/momentum`;
      const values = initial ? (initialValues(initial, slotName, variable.shape) as Float32Array) : new Float32Array(variable.size);
      const accumulator = new HostTensor([...variable.shape], values);
      added.set(slotName, accumulator);
      this.slots.set(name, { variable, accumulator });
    }
    return added;
  }

  /**
   * Updates exactly the variables in `grads` (keyed by state name). L2 applies to those variables
   * only: the ones used in this step.
   */
  apply(grads: Iterable<readonly [string, ArrayLike<number>]>, lr: number): void {
    const mu = this.momentum;
    const decay = 2 * this.options.l2;
    for (const [key, g] of grads) {
      const slot = this.slots.get(key);
      if (!slot) throw new Error(`gradient for a variable without an optimizer slot (${key})`);
      const variable = onBackend(slot.variable);
      const w = variable.dataSync();
      const a = slot.accumulator.dataSync();
      if (g.length !== w.length) throw new Error(`gradient of ${key} has ${g.length} values, the variable ${w.length}`);
      const nextW = new Float32Array(w.length);
      const nextA = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]! + decay * w[i]!;
        const ai = mu * a[i]! + gi;
        nextA[i] = ai;
        nextW[i] = w[i]! - lr * (gi + mu * ai);
      }
      slot.accumulator.replace(nextA);
      assignValues(variable, nextW);
    }
  }
}

/** Cosine annealing with warm restarts (ENAS.md §3), in epochs. */
export interface CosineRestarts {
  lrMax: number;
  lrMin: number;
  /** Length of the first period in epochs. */
  t0: number;
  /** Each period is `tMul` times longer than the previous one. */
  tMul: number;
}

/** The four CIFAR columns of the ENAS.md hyperparameter table. */
export const REFERENCE_LR: Record<'macroSearch' | 'macroFinal' | 'microSearch' | 'microFinal', CosineRestarts> = {
  macroSearch: { lrMax: 0.05, lrMin: 0.0005, t0: 10, tMul: 2 },
  macroFinal: { lrMax: 0.05, lrMin: 0.001, t0: 10, tMul: 2 },
  microSearch: { lrMax: 0.05, lrMin: 0.0005, t0: 10, tMul: 2 },
  microFinal: { lrMax: 0.05, lrMin: 0.0001, t0: 10, tMul: 2 },
};

/**
 * lr = lr_min + ½(lr_max − lr_min)(1 + cos(π·T_cur/T_i)), constant within an epoch (the
 * reference computes it from `step // batches_per_epoch`); periods 10, 20, 40, … restart at epochs
 * 10, 30, 70, 150, 310, 630. `epoch` is 0-based; a fractional epoch is floored.
 */
export function cosineLr(epoch: number, schedule: CosineRestarts): number {
  let start = 0;
  let period = schedule.t0;
  const e = Math.floor(epoch);
  while (e >= start + period) {
    start += period;
    period *= schedule.tMul;
  }
  return schedule.lrMin + 0.5 * (schedule.lrMax - schedule.lrMin) * (1 + Math.cos((Math.PI * (e - start)) / period));
}
