/*
 * The micro (cell) controller: per computed node two inputs by attention, then two ops; the
 * normal cell first, then the reduce cell continuing the LSTM state (ENAS.md §2 "Micro token
 * order", §1b).
 */
import tf = require('@tensorflow/tfjs-core');
import type { SpaceSpec } from '../search-spaces/spaces.js';
import type { ControllerOptions } from './controller.js';
import { Anchors, attentionControllerParams, chooseEach, type ControllerNet, type LstmState, type Rollout, type SpacePolicy } from './controller-network.js';

type MicroSpec = Extract<SpaceSpec, { space: 'micro' }>;

/** The reference favours the separable convolutions (ids 0, 1 in E's list); we match them by name so op subsets keep it. */
const isSepConv = (op: string): boolean => op.startsWith('sepconv');

export function microPolicy(spec: MicroSpec, options: ControllerOptions): SpacePolicy {
  const H = options.lstmSize;
  const ops = spec.ops.length;
  const tokensPerCell = 4 * spec.nodes;
  // b_soft is learnable, initialised [10, 10, 0, 0, 0] inside the tanh (ENAS.md §2), reproduced. At 10
  // the sep-conv logits sit at the cap with almost no gradient (tanh′(10) ≈ 8e-9). So E's controller
  // can demote the other ops but can never rank one above a sep-conv, nor tell sep3 from sep5.
  const opBiasInit = Float32Array.from(spec.ops, (op) => (isSepConv(op) ? 10 : 0));
  // The normal cell alone adds the constant ±normalOpBias, + for the sep-convs (ENAS.md §2;
  // NNI v1 biased the reduce cell instead, §5).
  const normalCellBias = Float32Array.from(spec.ops, (op) => (isSepConv(op) ? 1 : -1) * options.normalOpBias);
  const opTanhConstant = options.tanhConstant / options.opTanhReduce;

  /** Walks cell 0 (normal) or 1 (reduce) from `start` and returns the LSTM state after it. */
  function walkCell(net: ControllerNet, rollout: Rollout, cell: number, start: LstmState): LstmState {
    const batch = rollout.batchSize;
    let state = start;
    // The two cell inputs get zero anchor vectors; only the W1-projections of two LSTM steps on g_emb are kept.
    const anchors = new Anchors(net);
    for (let k = 0; k < 2; k++) {
      state = net.lstm(net.start(batch), state);
      anchors.add(state.h, net.zeros(batch));
    }
    const biasConstant = cell === 0 ? tf.tensor2d(normalCellBias, [1, ops]) : null;
    let input = net.start(batch);
    for (let node = 2; node < spec.nodes + 2; node++) {
      // Sampled idx1, idx2, op1, op2 but stored [idx1, op1, idx2, op2] (ENAS.md §2).
      const base = cell * tokensPerCell + 4 * (node - 2);
      for (let k = 0; k < 2; k++) {
        state = net.lstm(input, state);
        input = anchors.select(chooseEach(rollout, base + 2 * k, net.squash(anchors.attend(state.h))));
      }
      for (let k = 0; k < 2; k++) {
        state = net.lstm(input, state);
        const raw = tf.add(tf.matMul(state.h, net.param('soft')), net.param('soft_bias')) as tf.Tensor2D;
        const squashed = net.squash(raw, opTanhConstant);
        const logits = biasConstant ? (tf.add(squashed, biasConstant) as tf.Tensor2D) : squashed;
        input = net.embed('emb', chooseEach(rollout, base + 2 * k + 1, logits));
      }
      // The extra step on emb[op2] makes the node's anchor; the next node starts from g_emb again.
      state = net.lstm(input, state);
      anchors.add(state.h);
      input = net.start(batch);
    }
    return state;
  }

  return {
    params: { ...attentionControllerParams(H, ops), soft_bias: { shape: [1, ops], init: opBiasInit } },
    entropy: 'full',
    walk(net, rollout) {
      const afterNormal = walkCell(net, rollout, 0, net.zeroState(rollout.batchSize));
      walkCell(net, rollout, 1, afterNormal);
    },
  };
}
