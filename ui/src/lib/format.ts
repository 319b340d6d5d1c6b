import { absLessThan, formatFixed, isZero, mul, parseDec, type Dec } from './decimal';
import type { PlnRate } from './wire';

const CENT: Dec = { units: 1n, scale: 2 };

/**
 * The seed's rule for every cost the console shows (cards, tables, chart legends; maictl
 * prints the same): under one cent (or grosz) 6 decimals so a cheap request is not
 * "$0.00", otherwise 2; rounding half-up like the ledger, exactly (no floats).
 */
function places(a: Dec): number {
  return !isZero(a) && absLessThan(a, CENT) ? 6 : 2;
}

export function usd(amount: string | null | undefined): string {
  const a = parseDec(amount);
  if (!a) return '—';
  const s = formatFixed(a, places(a), ',', '.');
  return s.startsWith('-') ? '-$' + s.slice(1) : '$' + s;
}

export function pln(amount: Dec): string {
  // Polish style: non-breaking space groups, comma decimal mark.
  return formatFixed(amount, places(amount), '\u00a0', ',') + '\u00a0zł';
}

/** A PLN amount as the wire sends it (a decimal string); "—" when missing or unreadable. */
export function plnAmount(amount: string | null | undefined): string {
  const a = parseDec(amount);
  return a ? pln(a) : '—';
}

/** "$12.50 (50,00 zł)"; without a rate only the USD part. */
export function usdPln(amount: string | null | undefined, rate: PlnRate | null | undefined): string {
  const u = usd(amount);
  const a = parseDec(amount);
  const r = rate && rate.available ? parseDec(rate.rate) : null;
  if (!a || !r) return u;
  return `${u} (${pln(mul(a, r))})`;
}

export function int(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return Math.trunc(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function percent(p: string | null | undefined): string {
  const a = parseDec(p);
  return a ? formatFixed(a, 1, ',', '.') + '%' : '—';
}

/** A margin as the report computed it (already rounded to 0.01): "23.08" -> "23.08%". */
export function margin(p: string | null | undefined): string {
  const a = parseDec(p);
  return a ? formatFixed(a, 2, ',', '.') + '%' : '—';
}

/** A fraction as a percentage with one decimal ("0.25" -> "25.0%"), exactly. */
export function share(fraction: string | null | undefined): string {
  const a = parseDec(fraction);
  return a ? formatFixed(mul(a, { units: 100n, scale: 0 }), 1, ',', '.') + '%' : '—';
}

/** What a `by_task` row is, for people: Open WebUI's task names as they are. */
export function taskLabel(key: string): string {
  if (key === 'chat') return "Users' own messages";
  if (key === '(unknown)') return 'Unknown (X-Mai-Task not sent)';
  return key;
}

/** For charts only (axis scaling); never for displayed money. */
export function toChartNumber(amount: string): number {
  return Number(amount);
}

// One formatter each, made once: `Date.prototype.toLocaleTimeString` and friends build a
// new ICU date formatter on every call, and the web process keeps them until its GC runs
// (the fleet table's 100 "last sync" times cost ~25 MiB of the console's memory; issue 14,
// deploy/bench/console-footprint.sh). Same output as the methods without arguments.
const TIME = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: 'numeric', second: 'numeric' });
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
});

/** A time of day in the operator's locale, as `toLocaleTimeString()` writes it. */
export function localTime(at: string | Date): string {
  return TIME.format(typeof at === 'string' ? new Date(at) : at);
}

/** A date and time in the operator's locale, as `toLocaleString()` writes it. */
export function localDateTime(at: string | Date): string {
  return DATE_TIME.format(typeof at === 'string' ? new Date(at) : at);
}
