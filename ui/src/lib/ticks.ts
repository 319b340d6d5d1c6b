// Axis ticks for the charts, chosen from the decimal strings themselves: uPlot's own
// ticks are floats printed with a fixed number of decimals, which at sub-cent amounts
// repeats labels ("0.001, 0.001, 0.002"). Here every step is 1, 2 or 5 × 10^k and the
// labels carry exactly the decimals the step needs, so no two labels are alike.
import { formatFixed, parseDec, type Dec } from './decimal';

export interface Ticks {
  /** Tick positions for the chart's geometry (floats are fine there, never for money). */
  values: number[];
  /** The labels, exact: "0.0005", "1,000". */
  labels: string[];
  /** The scale's range: the first and the last tick. */
  min: number;
  max: number;
  /** The step as a decimal string ("0.0005"). */
  step: string;
}

export interface TickOptions {
  /** At most this many ticks, both ends included (at least 3). */
  maxTicks?: number;
  /** No step below this (1 for counts: no "0.5 requests"). */
  minStep?: string;
  /** The range shown when every amount is zero (or there are none). */
  emptyMax?: string;
  /** Thousands separator of the labels. */
  group?: string;
}

const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));
const ceilDiv = (a: bigint, b: bigint): bigint => -floorDiv(-a, b);

/** `a` as an integer count of 10^-scale (scale ≥ a.scale). */
const at = (a: Dec, scale: number): bigint => a.units * 10n ** BigInt(scale - a.scale);

/**
 * Ticks from min(0, smallest) to max(0, largest) in "nice" steps. Unparsable amounts
 * are skipped; with nothing but zeros the axis spans 0 to `emptyMax`.
 */
export function niceTicks(amounts: readonly (string | null | undefined)[], opts: TickOptions = {}): Ticks {
  const maxTicks = Math.max(3, Math.floor(opts.maxTicks ?? 6));
  const group = opts.group ?? ',';
  const minStep = parseDec(opts.minStep ?? null);
  const decs = amounts.map((a) => parseDec(a)).filter((d): d is Dec => d !== null);
  const empty = parseDec(opts.emptyMax ?? '0.01') ?? { units: 1n, scale: 2 };

  // One integer scale for everything, one digit finer than the finest input so that a
  // step below the data's resolution (a range of 0.0001 in five steps) is representable.
  const scale = Math.max(0, empty.scale, minStep?.scale ?? 0, ...decs.map((d) => d.scale)) + 1;
  let lo = 0n;
  let hi = 0n;
  for (const d of decs) {
    const v = at(d, scale);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) hi = lo + at(empty, scale);
  const min = minStep ? at(minStep, scale) : 0n;

  for (let e = -scale; ; e++) {
    for (const m of [1n, 2n, 5n]) {
      const step = m * 10n ** BigInt(e + scale);
      if (step < min) continue;
      const first = floorDiv(lo, step);
      const last = ceilDiv(hi, step);
      if (last - first > BigInt(maxTicks - 1)) continue;
      const dp = Math.max(0, -e);
      const labels: string[] = [];
      const values: number[] = [];
      for (let k = first; k <= last; k++) {
        const tick: Dec = { units: k * step, scale };
        labels.push(formatFixed(tick, dp, group, '.'));
        values.push(Number(formatFixed(tick, dp, '', '.')));
      }
      return {
        values,
        labels,
        min: values[0],
        max: values[values.length - 1],
        step: formatFixed({ units: step, scale }, dp, '', '.'),
      };
    }
  }
}
