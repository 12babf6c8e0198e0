/*
 * The in-memory forms every loader in trial/data produces and every batcher consumes, and the one
 * error type for bad input files.
 */

/** Images as stored on disk: N·H·W·C bytes (NHWC, 0..255) and one class byte per image. */
export interface ImageDataset {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  classes: number;
  /** Which dataset these images come from, e.g. "fashion-mnist". */
  name: string;
}

/** A dataset's official training and test sets; the validation split is cut from `train` (split.ts). */
export interface ImageSplits {
  train: ImageDataset;
  test: ImageDataset;
}

/** A tokenised corpus: ids index `vocab`; every line of the source text ends with `<eos>`. */
export interface Corpus {
  vocab: string[];
  train: Int32Array;
  valid: Int32Array;
  test: Int32Array;
}

/** A missing or malformed data file: one line, "<path>: <what is wrong>, expected <what>". */
export class DataError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'DataError';
  }
}
