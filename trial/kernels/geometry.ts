/*
 * Shape bookkeeping shared by the convolution and pooling gradient kernels: turns the attributes
 * tfjs passes to a kernel into a forward-pass geometry (tfjs's own conv_util, so padding and
 * rounding agree with the forward kernels) and checks the cases these kernels support.
 */
import tf = require('@tensorflow/tfjs-core');
import type { Conv2DBackpropFilterAttrs, DepthwiseConv2dNativeBackpropFilterAttrs } from '@tensorflow/tfjs-core';

export type Shape4 = [number, number, number, number];
type Padding = Conv2DBackpropFilterAttrs['pad'];
type Rounding = Conv2DBackpropFilterAttrs['dimRoundingMode'];
type Pair = [number, number] | number;
/** Zero rows/columns added around the spatial axes of an NHWC tensor. */
export interface Padding4 {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** The forward pass a gradient kernel is differentiating, in NHWC. */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

function fromConvInfo(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

function isOne(value: Pair | undefined): boolean {
  return value === undefined || (Array.isArray(value) ? value[0] === 1 && value[1] === 1 : value === 1);
}

/** Geometry of a regular conv2d; only NHWC and dilation 1 exist for its gradients in tfjs. */
export function convGeometry(
  kernelName: string,
  inputShape: Shape4,
  filterShape: Shape4,
  strides: Pair,
  pad: Padding,
  dimRoundingMode: Rounding,
  dataFormat: 'NHWC' | 'NCHW',
): ConvGeometry {
  if (dataFormat !== 'NHWC') throw new Error(`${kernelName}: only NHWC is supported, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(inputShape, filterShape, strides, 1, pad, dimRoundingMode, false);
  return fromConvInfo(info);
}

/** Geometry of a depthwise conv2d with channel multiplier 1 (the separable convs of ENAS). */
export function depthwiseGeometry(
  kernelName: string,
  inputShape: Shape4,
  filterShape: Shape4,
  attrs: Pick<DepthwiseConv2dNativeBackpropFilterAttrs, 'strides' | 'dilations' | 'pad' | 'dimRoundingMode'>,
): ConvGeometry {
  if (filterShape[3] !== 1)
    throw new Error(`${kernelName}: only channel multiplier 1 is supported, got ${filterShape[3]}`);
  if (!isOne(attrs.dilations)) throw new Error(`${kernelName}: only dilation 1 is supported`);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  return fromConvInfo(info);
}

/** Geometry of a 2-D max or average pool (the channel count is both in and out). */
export function poolGeometry(
  inputShape: Shape4,
  filterSize: Pair,
  strides: Pair,
  pad: Padding,
  dimRoundingMode?: Rounding,
): ConvGeometry {
  return fromConvInfo(tf.backend_util.computePool2DInfo(inputShape, filterSize, strides, 1, pad, dimRoundingMode));
}

/**
 * Padding that turns the input gradient of a stride-1 convolution into a forward convolution
 * of dy (zero-dilated by the stride beforehand) with the spatially flipped filter:
 * dx[h] = Σ_a dy'[h + padTop − a]·w[a] = Σ_a' dy'[h − (k−1−padTop) + a']·w[k−1−a'].
 * Returns null where that padding would be negative (explicit paddings wider than the filter),
 * which these kernels do not handle.
 */
export function transposedConvPadding(g: ConvGeometry): Padding4 | null {
  const dilatedHeight = (g.outHeight - 1) * g.strideHeight + 1;
  const dilatedWidth = (g.outWidth - 1) * g.strideWidth + 1;
  const top = g.filterHeight - 1 - g.padTop;
  const left = g.filterWidth - 1 - g.padLeft;
  const bottom = g.inHeight + g.filterHeight - 1 - dilatedHeight - top;
  const right = g.inWidth + g.filterWidth - 1 - dilatedWidth - left;
  return Math.min(top, left, bottom, right) < 0 ? null : { top, bottom, left, right };
}

/**
 * Padding for computing a filter gradient as a convolution of x with dy as the filter, dilated by
 * the stride: dW[a] = Σ_i x[a + i·s − padTop]·dy[i]. The result has filterHeight×filterWidth
 * outputs, plus `extraRows`/`extraCols` trailing ones to slice away where the forward pass never
 * read the last rows or columns of x (then the bottom/right padding would have to be negative).
 */
export function filterGradPadding(g: ConvGeometry): Padding4 & { extraRows: number; extraCols: number } {
  const bottom = g.filterHeight - 1 + (g.outHeight - 1) * g.strideHeight + 1 - g.inHeight - g.padTop;
  const right = g.filterWidth - 1 + (g.outWidth - 1) * g.strideWidth + 1 - g.inWidth - g.padLeft;
  return {
    top: g.padTop,
    left: g.padLeft,
    bottom: Math.max(bottom, 0),
    right: Math.max(right, 0),
    extraRows: Math.max(-bottom, 0),
    extraCols: Math.max(-right, 0),
  };
}

/** tfjs's explicit-padding attribute for an NHWC conv. */
export function explicitPadding(p: Padding4): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [p.top, p.bottom],
    [p.left, p.right],
    [0, 0],
  ];
}
