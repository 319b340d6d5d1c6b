// Exact decimal arithmetic for display: amounts arrive as decimal strings from Rust and
// are never turned into JS floats (a float would misprint sub-cent costs).

export interface Dec {
  units: bigint; // value = units / 10^scale
  scale: number;
}

export function parseDec(text: string | null | undefined): Dec | null {
  if (text === null || text === undefined) return null;
  const s = String(text).trim();
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const sign = m[1] === '-' ? -1n : 1n;
  const frac = m[3] ?? '';
  const exp = m[4] ? parseInt(m[4], 10) : 0;
  let units = BigInt((m[2] || '0') + frac) * sign;
  let scale = frac.length - exp;
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units, scale };
}

export function mul(a: Dec, b: Dec): Dec {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

export function isZero(a: Dec): boolean {
  return a.units === 0n;
}

/** |a| < 10^-dp ... compares against a small threshold given as a Dec. */
export function absLessThan(a: Dec, b: Dec): boolean {
  const s = Math.max(a.scale, b.scale);
  const av = (a.units < 0n ? -a.units : a.units) * 10n ** BigInt(s - a.scale);
  const bv = b.units * 10n ** BigInt(s - b.scale);
  return av < bv;
}

/** Rounds half away from zero (the ledger's "half-up") to `dp` places. */
export function round(a: Dec, dp: number): Dec {
  if (a.scale <= dp) return { units: a.units * 10n ** BigInt(dp - a.scale), scale: dp };
  const div = 10n ** BigInt(a.scale - dp);
  const neg = a.units < 0n;
  const abs = neg ? -a.units : a.units;
  let q = abs / div;
  if ((abs % div) * 2n >= div) q += 1n;
  return { units: neg ? -q : q, scale: dp };
}

/** Fixed `dp` digits with a thousands separator and a decimal mark. */
export function formatFixed(a: Dec, dp: number, group: string, mark: string): string {
  const r = round(a, dp);
  const neg = r.units < 0n;
  const digits = (neg ? -r.units : r.units).toString().padStart(dp + 1, '0');
  const intPart = digits.slice(0, digits.length - dp);
  const fracPart = digits.slice(digits.length - dp);
  const grouped = intPart.replace(/\B(?=(\d{3})+(?!\d))/g, group);
  return (neg ? '-' : '') + grouped + (dp > 0 ? mark + fracPart : '');
}
