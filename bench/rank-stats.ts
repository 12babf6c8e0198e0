/*
 * Rank agreement between two scorings of the same items (the ranking benchmark: shared-weight
 * scores against stand-alone scores of the same architectures). Both lists are "higher is
 * better" and item i of one is item i of the other. Ties are real here (accuracies are counts
 * over a fixed set of images, and a young supernet scores many architectures alike), so
 * Kendall's τ-b and Spearman's ρ on average ranks, the tie-corrected forms, are used.
 */

/** Ranks 1…n (1 = smallest), tied values sharing the mean of the ranks they span. */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end++;
    // Ranks start + 1 … end + 1, averaged.
    const rank = (start + end + 2) / 2;
    for (let i = start; i <= end; i++) ranks[order[i]!.index] = rank;
    start = end + 1;
  }
  return ranks;
}

function checkPaired(x: readonly number[], y: readonly number[]): void {
  if (x.length !== y.length) throw new Error(`internal: rank statistics of ${x.length} and ${y.length} values`);
  if (![...x, ...y].every(Number.isFinite)) throw new Error('internal: rank statistics of non-finite values');
}

/**
 * Kendall's τ-b: (concordant − discordant) / √((n₀ − n₁)(n₀ − n₂)), n₀ = n(n−1)/2 pairs, n₁ and
 * n₂ the pairs tied in x and in y. Null when either list is constant (every pair tied).
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number | null {
  checkPaired(x, y);
  let concordant = 0;
  let discordant = 0;
  let tiedX = 0;
  let tiedY = 0;
  const n = x.length;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign(x[j]! - x[i]!);
      const dy = Math.sign(y[j]! - y[i]!);
      if (dx === 0) tiedX++;
      if (dy === 0) tiedY++;
      if (dx * dy > 0) concordant++;
      else if (dx * dy < 0) discordant++;
    }
  const pairs = (n * (n - 1)) / 2;
  const denominator = Math.sqrt((pairs - tiedX) * (pairs - tiedY));
  return denominator > 0 ? (concordant - discordant) / denominator : null;
}

/** Spearman's ρ: Pearson's correlation of the average ranks. Null when either list is constant. */
export function spearmanRho(x: readonly number[], y: readonly number[]): number | null {
  checkPaired(x, y);
  const [rx, ry] = [averageRanks(x), averageRanks(y)];
  const mean = (x.length + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const [dx, dy] = [rx[i]! - mean, ry[i]! - mean];
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

/** Indices of the k highest values, best first; ties keep the lower index first. */
export function topIndices(values: readonly number[], k: number): number[] {
  return values
    .map((value, index) => ({ value, index }))
    .sort((a, b) => b.value - a.value || a.index - b.index)
    .slice(0, k)
    .map((entry) => entry.index);
}

export interface TopOverlap {
  k: number;
  /** Items in both top-k sets. */
  overlap: number;
  /** Its expectation for two unrelated rankings: k²/n (hypergeometric). */
  chance: number;
}

/** How many of x's top k are among y's top k (ties at the boundary broken by index, as topIndices). */
export function topOverlap(x: readonly number[], y: readonly number[], k: number): TopOverlap {
  checkPaired(x, y);
  if (!(Number.isInteger(k) && k >= 1 && k <= x.length)) throw new Error(`internal: top-${k} of ${x.length} items`);
  const inY = new Set(topIndices(y, k));
  return { k, overlap: topIndices(x, k).filter((i) => inY.has(i)).length, chance: (k * k) / x.length };
}

/**
 * The standard deviation of τ over random orderings of n untied items, √(2(2n+5) / (9n(n−1))):
 * how far from 0 a τ of unrelated rankings typically lands (0.16 for n = 20).
 */
export const kendallNullSd = (n: number): number => Math.sqrt((2 * (2 * n + 5)) / (9 * n * (n - 1)));
