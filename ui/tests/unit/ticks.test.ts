import { describe, expect, it } from 'vitest';
import { niceTicks } from '../../src/lib/ticks';

const distinct = (xs: string[]) => new Set(xs).size === xs.length;

describe('niceTicks', () => {
  it('labels sub-cent ranges with the decimals the step needs, none repeated', () => {
    // The 30-day chart's case: uPlot printed "0.001, 0.001, 0.002, 0.002" here.
    const t = niceTicks(['0.0003', '0.00087', '0.0012', '0.0021', '0.000863525']);
    expect(t.step).toBe('0.0005');
    expect(t.labels).toEqual(['0.0000', '0.0005', '0.0010', '0.0015', '0.0020', '0.0025']);
    expect(t.values).toEqual([0, 0.0005, 0.001, 0.0015, 0.002, 0.0025]);
    expect([t.min, t.max]).toEqual([0, 0.0025]);
    expect(distinct(t.labels)).toBe(true);
  });

  it('goes below the data resolution when the range asks for it', () => {
    const t = niceTicks(['0.0001']);
    expect(t.step).toBe('0.00002');
    expect(t.labels).toEqual(['0.00000', '0.00002', '0.00004', '0.00006', '0.00008', '0.00010']);
  });

  it('covers the largest amount exactly (no float drift)', () => {
    const t = niceTicks(['0.3', '0.1', '0.2']);
    // 0.05 would need 6 intervals, one more than 6 ticks allow.
    expect(t.labels).toEqual(['0.0', '0.1', '0.2', '0.3']);
    expect(t.max).toBe(0.3);
  });

  it('spans 0 to one cent when every day is zero or there are no days', () => {
    for (const data of [['0', '0.000', '0'], [], [null, 'junk']]) {
      const t = niceTicks(data);
      expect(t.labels).toEqual(['0.000', '0.002', '0.004', '0.006', '0.008', '0.010']);
      expect([t.min, t.max]).toEqual([0, 0.01]);
    }
  });

  it('uses round thousands with separators for large ranges', () => {
    const t = niceTicks(['12345.67', '800', '0']);
    expect(t.step).toBe('5000');
    expect(t.labels).toEqual(['0', '5,000', '10,000', '15,000']);
    const u = niceTicks(['2.5', '17.4']);
    expect(u.labels).toEqual(['0', '5', '10', '15', '20']);
  });

  it('counts never get fractional steps', () => {
    expect(niceTicks(['0', '1', '3'], { minStep: '1' }).labels).toEqual(['0', '1', '2', '3']);
    expect(niceTicks(['0'], { minStep: '1', emptyMax: '1' }).labels).toEqual(['0', '1']);
    expect(niceTicks(['40', '127'], { minStep: '1' }).labels).toEqual(['0', '50', '100', '150']);
  });

  it('extends below zero for negative amounts (a refund day)', () => {
    expect(niceTicks(['-0.004', '0.007']).labels).toEqual(['-0.005', '0.000', '0.005', '0.010']);
  });

  it('respects the tick budget', () => {
    for (const max of ['0.0021', '0.37', '9', '123456789.123456789']) {
      for (const maxTicks of [3, 4, 6, 10]) {
        const t = niceTicks([max], { maxTicks });
        expect(t.labels.length).toBeLessThanOrEqual(maxTicks);
        expect(t.max).toBeGreaterThanOrEqual(Number(max));
        expect(distinct(t.labels)).toBe(true);
        expect(t.step).toMatch(/^(0\.0*)?[125]0*$/);
      }
    }
  });
});
