/*
 * The NAS-Bench-201 controller: not in the reference, so a plain categorical sequence built from
 * the same parts. One LSTM step per edge (the 6 edges in NB201_EDGES order), each edge with its
 * own softmax head and op embedding; the first step reads g_emb, later steps the previous edge's
 * embedding.
 */
import tf = require('@tensorflow/tfjs-core');
import { NB201_EDGES } from '../search-spaces/genotype.js';
import type { SpaceSpec } from '../search-spaces/spaces.js';
import type { ControllerOptions } from './controller.js';
import { chooseEach, type ParamSpec, type SpacePolicy } from './controller-network.js';

type Nb201Spec = Extract<SpaceSpec, { space: 'nb201' }>;

export function nb201Policy(spec: Nb201Spec, options: ControllerOptions): SpacePolicy {
  const H = options.lstmSize;
  const ops = spec.ops.length;
  const edges = NB201_EDGES.length;
  const params: Record<string, ParamSpec> = {
    lstm: { shape: [2 * H, 4 * H] },
    g_emb: { shape: [1, H] },
  };
  for (let e = 0; e < edges; e++) {
    params[`soft_${e}`] = { shape: [H, ops] };
    // The last edge's op is never fed back, so it has no embedding.
    if (e < edges - 1) params[`emb_${e}`] = { shape: [ops, H] };
  }
  return {
    params,
    // Every edge is a plain categorical, so the full entropy is the natural bonus (as micro does).
    entropy: 'full',
    walk(net, rollout) {
      let state = net.zeroState(rollout.batchSize);
      let input = net.start(rollout.batchSize);
      for (let e = 0; e < edges; e++) {
        state = net.lstm(input, state);
        const op = chooseEach(rollout, e, net.squash(tf.matMul(state.h, net.param(`soft_${e}`))));
        if (e < edges - 1) input = net.embed(`emb_${e}`, op);
      }
    },
  };
}
