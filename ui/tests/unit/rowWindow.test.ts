import { describe, expect, it } from 'vitest';
import { rowWindow } from '../../src/lib/rowWindow';

const tens = (n: number) => Array.from({ length: n }, () => 10);

describe('rowWindow', () => {
  it('renders the rows overlapping the view, and the spacers add up to the rest', () => {
    // Rows 2 (20..30) to 5 (50..60) overlap 25..55.
    expect(rowWindow(tens(100), 25, 55, 0)).toEqual({ start: 2, end: 6, before: 20, after: 940 });
    expect(rowWindow(tens(100), 25, 55, 3)).toEqual({ start: 0, end: 9, before: 0, after: 910 });
  });

  it('a view above the list (the table below the fold) still renders its first rows', () => {
    expect(rowWindow(tens(100), -900, -100, 5)).toEqual({ start: 0, end: 6, before: 0, after: 940 });
  });

  it('a view below the list renders its last rows', () => {
    expect(rowWindow(tens(100), 5000, 5800, 4)).toEqual({ start: 95, end: 100, before: 950, after: 0 });
  });

  it('uneven heights: a tall row in view is rendered whole', () => {
    const h = [10, 10, 300, 10, 10, 10];
    expect(rowWindow(h, 100, 150, 0)).toEqual({ start: 2, end: 3, before: 20, after: 30 });
    expect(rowWindow(h, 315, 325, 0)).toEqual({ start: 2, end: 4, before: 20, after: 20 });
  });

  it('every row is rendered by some view while scrolling through, in order and once', () => {
    const h = Array.from({ length: 200 }, (_, i) => 40 + ((i * 37) % 90));
    const total = h.reduce((a, b) => a + b, 0);
    const seen = new Set<number>();
    for (let top = -300; top < total + 300; top += 350) {
      const w = rowWindow(h, top, top + 800, 2);
      const sumOf = (a: number, b: number) => h.slice(a, b).reduce((x, y) => x + y, 0);
      expect(w.before + sumOf(w.start, w.end) + w.after).toBe(total);
      expect(w.end).toBeGreaterThan(w.start);
      for (let i = w.start; i < w.end; i++) seen.add(i);
    }
    expect(seen.size).toBe(200);
  });

  it('no rows, no window', () => {
    expect(rowWindow([], 0, 800, 10)).toEqual({ start: 0, end: 0, before: 0, after: 0 });
  });
});
