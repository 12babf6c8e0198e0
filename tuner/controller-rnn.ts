/*
 * The recurrent-cell controller (PTB): per node a predecessor by attention with a recency
 * penalty, then an activation (ENAS.md §2 "PTB token order", §1c). It follows E's
 * ptb_enas_controller, with the LSTM-state fix of melodyguan/enas#27 (ENAS.md §6 #2).
 */
import tf = require('@tensorflow/tfjs-core');
import type { SpaceSpec } from '../search-spaces/spaces.js';
import type { ControllerOptions } from './controller.js';
import { Anchors, attentionControllerParams, chooseEach, type SpacePolicy } from './controller-network.js';

type RnnSpec = Extract<SpaceSpec, { space: 'rnn' }>;

export function rnnPolicy(spec: RnnSpec, options: ControllerOptions): SpacePolicy {
  const H = options.lstmSize;
  const activations = spec.ops.length;
  return {
    params: attentionControllerParams(H, activations),
    entropy: 'sampled',
    walk(net, rollout) {
      const batch = rollout.batchSize;
      const anchors = new Anchors(net);
      let state = net.zeroState(batch);
      let input = net.start(batch);
      let position = 0;
      for (let node = 0; node < spec.nodes; node++) {
        // This step's output is node j's anchor and, for j ≥ 1, the query over h_0 … h_{j−1}.
        state = net.lstm(input, state);
        if (node > 0) {
          // After the transform, subtract (j−p)²/6, which favours recent predecessors (ENAS.md §2).
          const recency = tf.tensor2d(
            Array.from({ length: node }, (_, p) => ((node - p) * (node - p)) / 6),
            [1, node],
          );
          const logits = tf.sub(net.squash(anchors.attend(state.h)), recency) as tf.Tensor2D;
          const prev = chooseEach(rollout, position++, logits);
          input = anchors.select(prev, (p) => 1 / (0.1 + (node - p)));
        } else {
          input = net.start(batch);
        }
        anchors.add(state.h);
        state = net.lstm(input, state);
        const activation = chooseEach(rollout, position++, net.squash(tf.matMul(state.h, net.param('soft'))));
        input = net.embed('emb', activation);
      }
    },
  };
}
