/*
 * Forward FLOPs of one example through the sampled subgraph of a supernet, for the achieved
 * GFLOP/s of `bench supernet`. Convention: multiply-adds of convolutions, depthwise convolutions
 * and dense layers (1×1 convs, factorized reductions, classifier, RNN matMuls) ×2; batch norm,
 * pools, activations, sums, the softmax and the loss are not counted. A training step counts 3× its
 * forward pass (forward, input gradient, weight gradient), the aux head included.
 *
 * Mirrors the layouts of trial/supernet/{micro,macro,rnn}.ts; test/bench-flops.test.ts checks
 * the CNN counts against the convolution and matMul kernels a forward pass actually runs.
 */
import { microLooseEnds, type MacroGenotype, type MicroGenotype, type MicroOp } from '../search-spaces/genotype.js';
import { macroPoolLayers, microReductionCells } from '../trial/cnn.js';
import type { MacroSupernetConfig } from '../trial/supernet/macro.js';
import type { MicroSupernetConfig } from '../trial/supernet/micro.js';

/** Training FLOPs per forward FLOP (the convention above). */
export const TRAINING_FLOPS_FACTOR = 3;

interface Map2d {
  height: number;
  width: number;
  channels: number;
}

/** Multiply-adds of a k×k convolution producing `cOut` channels at the size of map `m` (its channels are the input's). */
const conv = (m: Map2d, k: number, cOut: number): number => m.height * m.width * k * k * m.channels * cOut;
const depthwise = (m: Map2d, k: number): number => m.height * m.width * k * k * m.channels;
const halved = (m: Map2d, channels: number): Map2d => ({ height: Math.ceil(m.height / 2), width: Math.ceil(m.width / 2), channels });
/** Factorized reduction to `cOut`: two 1×1 convs to cOut/2 on the half-size grid. */
const factorizedReduction = (m: Map2d, cOut: number): number => conv(halved(m, m.channels), 1, cOut);

const SEPARABLE_KERNEL: Partial<Record<MicroOp, number>> = { sepconv3x3: 3, sepconv5x5: 5 };

/** The micro aux head on an h×w×C map: avg pool 5×5/3 VALID → 1×1 conv 128 → conv p×p 768 VALID → FC. */
export function auxHeadMacs(input: Map2d, numClasses: number): number {
  const window = Math.min(5, input.height, input.width);
  const pooled: Map2d = { height: Math.floor((input.height - window) / 3) + 1, width: Math.floor((input.width - window) / 3) + 1, channels: input.channels };
  const k = Math.floor((Math.min(input.height, input.width) - window) / 3) + 1;
  const out = { height: pooled.height - k + 1, width: pooled.width - k + 1, channels: 128 };
  return conv(pooled, 1, 128) + conv(out, k, 768) + 768 * numClasses;
}

export type MicroFlopsConfig = Pick<MicroSupernetConfig, 'inputShape' | 'numClasses' | 'channels' | 'layers' | 'auxHead'>;

/** Forward FLOPs per image of micro architecture `g`; `training` adds the aux head. */
export function microForwardFlops(g: MicroGenotype, config: MicroFlopsConfig, training: boolean): number {
  const [height, width, inChannels] = config.inputShape;
  let C = config.channels;
  const input = { height, width, channels: inChannels };
  let macs = conv(input, 3, 3 * C);
  let prev: Map2d = { height, width, channels: 3 * C };
  let last = prev;
  const reductions = microReductionCells(config.layers);
  const auxCell = reductions[1]! + 1;
  for (let i = 0; i < config.layers + 2; i++) {
    const reduction = reductions.includes(i);
    if (reduction) {
      C *= 2;
      macs += factorizedReduction(last, C);
      [prev, last] = [last, halved(last, C)];
    }
    // Calibration (trial/nn.ts Calibration): FR for a size mismatch, else a 1×1 conv for a channel mismatch.
    if (prev.height !== last.height || prev.width !== last.width) macs += factorizedReduction(prev, C);
    else if (prev.channels !== C) macs += conv(prev, 1, C);
    if (last.channels !== C) macs += conv(last, 1, C);
    const node: Map2d = { height: last.height, width: last.width, channels: C };
    const arc = reduction ? g.reduce : g.normal;
    for (const { ops } of arc)
      for (const op of ops) {
        const k = SEPARABLE_KERNEL[op];
        // Two stacks of depthwise k×k + pointwise.
        if (k) macs += 2 * (depthwise(node, k) + conv(node, 1, C));
      }
    macs += microLooseEnds(arc).length * conv(node, 1, C);
    [prev, last] = [last, node];
    if (training && config.auxHead && i === auxCell) macs += auxHeadMacs(node, config.numClasses);
  }
  return 2 * (macs + C * config.numClasses);
}

export type MacroFlopsConfig = Pick<MacroSupernetConfig, 'inputShape' | 'numClasses' | 'channels' | 'layers'>;

/** A history tensor of the macro network: computed, or a factorized reduction computed on first read. */
interface HistoryEntry {
  map: Map2d;
  pending?: { macs: number; source: HistoryEntry };
}

/** Forward FLOPs per image of macro architecture `g` (the same in training: no aux head). */
export function macroForwardFlops(g: MacroGenotype, config: MacroFlopsConfig): number {
  const [height, width, inChannels] = config.inputShape;
  const C = config.channels;
  let macs = conv({ height, width, channels: inChannels }, 3, C);
  // As the supernet's lazy history: a reduced tensor costs its reduction only if some layer reads it, once.
  const read = (entry: HistoryEntry): Map2d => {
    if (entry.pending) {
      read(entry.pending.source);
      macs += entry.pending.macs;
      entry.pending = undefined;
    }
    return entry.map;
  };
  let history: HistoryEntry[] = [{ map: { height, width, channels: C } }];
  const pools = new Set(macroPoolLayers(config.layers));
  g.layers.forEach((layer, i) => {
    const x = read(history[i]!);
    // Every branch starts with a 1×1 conv; then a k×k conv, a separable conv, or a pool.
    macs += conv(x, 1, C);
    const k = Number(layer.op.at(-1));
    if (layer.op.startsWith('conv')) macs += conv(x, k, C);
    else if (layer.op.startsWith('sepconv')) macs += depthwise(x, k) + conv(x, 1, C);
    layer.skips.forEach((bit, j) => bit && read(history[j]!));
    history.push({ map: x });
    if (pools.has(i))
      history = history.map((source) => {
        const map = halved(source.map, C);
        return { map, pending: { macs: factorizedReduction(source.map, C), source } };
      });
  });
  read(history[g.layers.length]!);
  return 2 * (macs + C * config.numClasses);
}

/**
 * Forward FLOPs per token of the RNN supernet, the same for every cell: node 0's [x, h]·[2H, 2H],
 * each further node's [H]·[H, 2H], the tied softmax's [H]·[H, V].
 */
export function rnnForwardFlopsPerToken(config: { hiddenSize: number; nodes: number; vocabSize: number }): number {
  const H = config.hiddenSize;
  return 2 * (2 * H * 2 * H + (config.nodes - 1) * H * 2 * H + H * config.vocabSize);
}
