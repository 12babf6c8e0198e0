/*
 * Per-channel standardisation as in the reference (ENAS.md §3): pixels scaled to [0,1], then
 * (x − mean) / std with mean and population std per channel over the training split only.
 */
import type { ImageDataset } from './types.js';

/** Per-channel statistics on the [0,1] pixel scale; plain arrays so they can go into JSON. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

/** Mean and population std of each channel over all pixels of `ds` (exact integer sums). */
export function channelStats(ds: ImageDataset): ChannelStats {
  const c = ds.channels;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const images = ds.images;
  for (let i = 0; i < images.length; i += c) {
    for (let k = 0; k < c; k++) {
      const v = images[i + k]!;
      sum[k]! += v;
      sumSq[k]! += v * v;
    }
  }
  const n = images.length / c;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sumSq, (s, k) => Math.sqrt(Math.max(0, s / n - mean[k]! ** 2)));
  return { mean: mean.map((m) => m / 255), std: std.map((s) => s / 255) };
}

/**
 * Lookup table from (channel, byte) to the normalised float: entry c·256 + v. A constant channel
 * (std 0, only in toy data) is centred but not scaled, rather than divided by zero.
 */
export function normalizationTable(stats: ChannelStats): Float32Array {
  const table = new Float32Array(stats.mean.length * 256);
  stats.mean.forEach((mean, c) => {
    const std = stats.std[c]! > 0 ? stats.std[c]! : 1;
    for (let v = 0; v < 256; v++) table[c * 256 + v] = (v / 255 - mean) / std;
  });
  return table;
}
