import { describe, expect, it } from 'vitest';
import { lineChart, niceTicks } from '../common/chart.js';

describe('line charts', () => {
  it('picks round ticks covering the range', () => {
    expect(niceTicks(0, 200)).toEqual([0, 50, 100, 150, 200]);
    expect(niceTicks(0.78, 0.93)).toEqual([0.8, 0.85, 0.9]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });

  it('draws one line and one legend entry per series, a band when given, and skips non-finite points', () => {
    const svg = lineChart({
      title: 'best so far',
      xLabel: 'trials',
      yLabel: 'accuracy',
      series: [
        { name: 'enas', points: [1, 2, 3].map((x) => ({ x, y: x / 10 })), band: [1, 2, 3].map((x) => ({ x, low: 0, high: 1 })) },
        { name: 'random <b>', points: [{ x: 1, y: 0.1 }, { x: 2, y: Number.NaN }, { x: 3, y: 0.2 }] },
      ],
    });
    expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
    expect((svg.match(/<polygon/g) ?? []).length).toBe(1);
    expect(svg).toContain('random &lt;b&gt;');
    expect(svg).not.toMatch(/NaN/);
  });
});
