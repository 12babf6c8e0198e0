/*
 * The macro (whole-network) controller: per layer an op, then one skip bit per earlier layer
 * chosen by attention (ENAS.md §2 "Macro token order", §1a).
 */
import tf = require('@tensorflow/tfjs-core');
import type { SpaceSpec } from '../search-spaces/spaces.js';
import type { ControllerOptions } from './controller.js';
import { Anchors, attentionControllerParams, chooseEach, type SpacePolicy } from './controller-network.js';

type MacroSpec = Extract<SpaceSpec, { space: 'macro' }>;

export function macroPolicy(spec: MacroSpec, options: ControllerOptions): SpacePolicy {
  const H = options.lstmSize;
  const ops = spec.ops.length;
  return {
    params: attentionControllerParams(H, ops),
    entropy: 'sampled',
    walk(net, rollout) {
      const batch = rollout.batchSize;
      // Anchor j is controller layer j's output h_j, and it stands for skip bit j of every later
      // layer. The child reads bit j as [stem, out_0, …, out_{i−2}][j], one layer earlier. This is
      // the reference's off-by-one (ENAS.md §1a), reproduced on purpose so the policy matches E's.
      const anchors = new Anchors(net);
      const skipTargets = tf.tensor2d([[1 - options.skipTarget, options.skipTarget]]);
      let state = net.zeroState(batch);
      let input = net.start(batch);
      let position = 0;
      for (let layer = 0; layer < spec.layers; layer++) {
        state = net.lstm(input, state);
        const op = chooseEach(rollout, position++, net.squash(tf.matMul(state.h, net.param('soft'))));
        state = net.lstm(net.embed('emb', op), state);
        if (layer > 0) {
          const score = tf.reshape(anchors.attend(state.h), [batch * layer, 1]) as tf.Tensor2D;
          // Logits [−q, q] per earlier layer, so P(skip) = σ(2q) after the transform (ENAS.md §2).
          const logits = net.squash(tf.concat([tf.neg(score), score], 1));
          const positions = Array.from({ length: layer }, (_, j) => position + j);
          position += layer;
          const bits = rollout.choose(positions, logits);
          if (options.skipWeight > 0)
            // KL(σ(l) ‖ [1−t, t]) on σ of the logits themselves, not the sampling probability σ(2q):
            // the reference's quirk (ENAS.md §2 Skip penalty), reproduced. Its fixed point is a skip
            // rate of σ(2·logit(t)), about 0.31 for t = 0.4, not t itself.
            rollout.penalize(() => {
              const p = tf.sigmoid(logits);
              const kl = tf.mul(p, tf.log(tf.div(p, skipTargets)));
              return tf.sum(tf.reshape(kl, [batch, 2 * layer]), 1) as tf.Tensor1D;
            });
          // Next input: Σ bit_j·h_j / (1 + Σ bits), as in the reference; zeros when no bit is set.
          input = anchors.mix(bits.map((row) => row.map((bit) => bit / (1 + row.reduce((a, b) => a + b, 0)))));
        } else {
          input = net.start(batch);
        }
        anchors.add(state.h);
      }
    },
  };
}
