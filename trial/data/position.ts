/*
 * The epoch/position bookkeeping both batchers share, so a checkpoint can store where training
 * stands as two integers and resume there.
 */

/** Where a batcher is: `position` batches of epoch `epoch` have been taken (both from 0). */
export interface BatcherPosition {
  epoch: number;
  position: number;
}

/** A copy of `at` after checking it lies within an epoch of `perEpoch` batches. */
export function checkPosition(at: BatcherPosition, perEpoch: number): BatcherPosition {
  const { epoch, position } = at;
  const ok = Number.isInteger(epoch) && epoch >= 0 && Number.isInteger(position) && position >= 0;
  if (!ok || position >= perEpoch)
    throw new RangeError(`batcher position ${JSON.stringify(at)} is outside an epoch of ${perEpoch} batches`);
  return { epoch, position };
}

/** The position after taking one batch, rolling over into the next epoch. */
export function advance(at: BatcherPosition, perEpoch: number): BatcherPosition {
  if (at.position + 1 < perEpoch) return { epoch: at.epoch, position: at.position + 1 };
  return { epoch: at.epoch + 1, position: 0 };
}
