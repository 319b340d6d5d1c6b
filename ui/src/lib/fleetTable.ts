// The fleet table's sorting, filtering and search: plain functions over the rows, so
// the view only derives (`$derived`) and the unit tests check them without a page.
// Money sorts by its exact decimal text (never parsed as a float).
import { parseDec, type Dec } from './decimal';
import type { AlertLevel, FleetRow } from './wire';

export type SortKey =
  | 'client' | 'container' | 'tracker' | 'sync' | 'requests' | 'tokens' | 'today' | 'month' | 'projected' | 'key'
  | 'alerts';
export type SortDir = 'asc' | 'desc';

/** Exact comparison of two decimals. */
export function compareDec(a: Dec, b: Dec): number {
  const s = Math.max(a.scale, b.scale);
  const av = a.units * 10n ** BigInt(s - a.scale);
  const bv = b.units * 10n ** BigInt(s - b.scale);
  return av < bv ? -1 : av > bv ? 1 : 0;
}

const LEVEL_RANK: Record<AlertLevel, number> = { info: 1, warning: 2, critical: 3 };

/** The worst alert level of a row as a number (0 = no alerts). */
export function worstAlert(r: FleetRow): number {
  return r.alerts.reduce((w, a) => Math.max(w, LEVEL_RANK[a.level] ?? 0), 0);
}

/** What the State filter matches: the chat container's state, or why there is none. */
export function rowState(r: FleetRow): string {
  if (r.container) return r.container.health === 'unhealthy' ? 'unhealthy' : r.container.state;
  return r.docker_error ? 'host unreachable' : 'no container';
}

type Value = string | number | Dec | null;

function value(r: FleetRow, key: SortKey): Value {
  switch (key) {
    case 'client': return r.client_id;
    case 'container': return rowState(r);
    case 'tracker': return r.tracker_reachable ? 1 : 0;
    case 'sync': return r.last_sync_state;
    case 'requests': return r.today_requests;
    case 'tokens': return r.today_tokens;
    case 'today': return parseDec(r.today_client_cost_usd);
    case 'month': return parseDec(r.month_client_cost_usd);
    case 'projected': return parseDec(r.projection?.projected_usd);
    case 'key': return r.key_state;
    case 'alerts': return worstAlert(r) * 10_000 + r.alerts.length;
  }
}

function compareValues(a: Value, b: Value): number {
  if (typeof a === 'string' && typeof b === 'string') return a.localeCompare(b, 'en', { numeric: true });
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (a && b && typeof a === 'object' && typeof b === 'object') return compareDec(a, b);
  return 0;
}

/**
 * Rows sorted by `key`: stable (equal rows keep their order), rows without the value
 * last in both directions (an unreachable tracker is not "the cheapest").
 */
export function sortRows(rows: readonly FleetRow[], key: SortKey, dir: SortDir): FleetRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i, v: value(r, key) }))
    .sort((x, y) => {
      const xn = x.v === null || x.v === undefined;
      const yn = y.v === null || y.v === undefined;
      if (xn || yn) return xn === yn ? x.i - y.i : xn ? 1 : -1;
      return sign * compareValues(x.v, y.v) || x.i - y.i;
    })
    .map((x) => x.r);
}

export interface FleetFilter {
  /** '' = every host. */
  host: string;
  /** '' = every state (see `rowState`). */
  state: string;
  /** '' = any; 'none' = no alerts; 'warning' = warning or worse; 'critical';
   *  'attention' = the client has active alerts nobody acknowledged or muted (Alerts view). */
  alerts: '' | 'none' | 'warning' | 'critical' | 'attention';
  /** Matches the client id or legal name, any case. */
  query: string;
}

export const NO_FILTER: FleetFilter = { host: '', state: '', alerts: '', query: '' };

/** `attention` is the Alerts view's `attention_by_client` (alerts needing attention per
 *  client); the levels filters read the row's own refresh-time alerts. */
export function filterRows(
  rows: readonly FleetRow[],
  f: FleetFilter,
  attention: Readonly<Record<string, number>> = {},
): FleetRow[] {
  const q = f.query.trim().toLowerCase();
  return rows.filter((r) => {
    if (f.host && r.host !== f.host) return false;
    if (f.state && rowState(r) !== f.state) return false;
    if (f.alerts === 'none' && r.alerts.length) return false;
    if (f.alerts === 'warning' && worstAlert(r) < LEVEL_RANK.warning) return false;
    if (f.alerts === 'critical' && worstAlert(r) < LEVEL_RANK.critical) return false;
    if (f.alerts === 'attention' && !(attention[r.client_id] ?? 0)) return false;
    if (q && !r.client_id.toLowerCase().includes(q) && !r.legal_name.toLowerCase().includes(q)) return false;
    return true;
  });
}

/** The distinct values of a column, sorted, for a filter's options. */
export function distinct(rows: readonly FleetRow[], of: (r: FleetRow) => string): string[] {
  return [...new Set(rows.map(of))].sort((a, b) => a.localeCompare(b));
}
