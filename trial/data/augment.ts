/*
 * Training-time image augmentation on normalised float images (NHWC, one image at a time), in
 * the reference's order (ENAS.md §3): zero pad → random crop back to H×W → horizontal flip →
 * cutout. Padding and cutout write 0, which after normalisation is the channel mean, as in the
 * reference (it normalises before augmenting).
 */
import type { Random } from '../../common/random.js';

export interface AugmentOptions {
  /** Zero padding on each side before a random crop back to H×W, i.e. shifts of −pad..pad; 0 disables. */
  pad: number;
  /** Mirror left–right with probability 0.5. */
  flip: boolean;
  /** Side of a square of zeros at a uniform random top-left corner, clipped at the borders; 0 disables. */
  cutout: number;
}

export const AUGMENT_PRESETS = {
  none: { pad: 0, flip: false, cutout: 0 },
  /** The reference's CIFAR-10 setting (ENAS.md §3). */
  reference: { pad: 4, flip: true, cutout: 0 },
  /** Plus the cutout 16 behind the paper's 2.89% micro result (ENAS.md §4). */
  'reference-cutout': { pad: 4, flip: true, cutout: 16 },
  /**
   * Fashion-MNIST: a mirrored garment or shoe is the same class, so flips are safe; items are
   * scaled to fill the 28×28 frame, so shifts stay at ±2 (a ±4 crop would cut off hems and toes).
   */
  clothes: { pad: 2, flip: true, cutout: 0 },
  /** MNIST: a mirrored digit is not a digit (or is another one), so shifts only. */
  digits: { pad: 2, flip: false, cutout: 0 },
} as const satisfies Record<string, AugmentOptions>;

export type AugmentPreset = keyof typeof AUGMENT_PRESETS;

const DEFAULT_PRESET: Record<string, AugmentPreset> = {
  cifar10: 'reference',
  'fashion-mnist': 'clothes',
  mnist: 'digits',
};

/** The augmentation a dataset trains with unless configured otherwise (none for unknown names); a copy. */
export function defaultAugment(datasetName: string): AugmentOptions {
  return { ...AUGMENT_PRESETS[DEFAULT_PRESET[datasetName] ?? 'none'] };
}

/** Throws unless pad and cutout are non-negative integers. */
export function checkAugment(options: AugmentOptions): void {
  for (const key of ['pad', 'cutout'] as const) {
    if (!(Number.isInteger(options[key]) && options[key] >= 0))
      throw new RangeError(`augmentation ${key} ${options[key]} must be a non-negative integer`);
  }
}

/** The random choices for one image. */
export interface AugmentDraw {
  /** Crop offset: output row i reads input row i + dy (and likewise columns); 0 outside the image. */
  dy: number;
  dx: number;
  flip: boolean;
  cutout?: { y: number; x: number; size: number };
}

/** Draws one image's choices, consuming the generator in a fixed order (dy, dx, flip, cutout y, x). */
export function drawAugment(options: AugmentOptions, height: number, width: number, rng: Random): AugmentDraw {
  const { pad, cutout } = options;
  const dy = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const dx = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const flip = options.flip && rng.next() < 0.5;
  if (cutout === 0) return { dy, dx, flip };
  const y = rng.int(height);
  return { dy, dx, flip, cutout: { y, x: rng.int(width), size: cutout } };
}

/**
 * Writes the augmented image into `dst` at element offset `at`; `src` is one H×W×C image.
 * Crop then flip: out(i, j) = src(i + dy, (flip ? W−1−j : j) + dx).
 */
export function augmentImage(
  src: Float32Array,
  dst: Float32Array,
  at: number,
  height: number,
  width: number,
  channels: number,
  draw: AugmentDraw,
): void {
  for (let i = 0; i < height; i++) {
    const si = i + draw.dy;
    for (let j = 0; j < width; j++) {
      const sj = (draw.flip ? width - 1 - j : j) + draw.dx;
      const out = at + (i * width + j) * channels;
      const inside = si >= 0 && si < height && sj >= 0 && sj < width;
      const from = (si * width + sj) * channels;
      for (let k = 0; k < channels; k++) dst[out + k] = inside ? src[from + k]! : 0;
    }
  }
  const cut = draw.cutout;
  if (!cut) return;
  for (let i = cut.y; i < Math.min(cut.y + cut.size, height); i++)
    dst.fill(0, at + (i * width + cut.x) * channels, at + (i * width + Math.min(cut.x + cut.size, width)) * channels);
}
