import { describe, expect, it } from 'vitest';
import { compareDec, filterRows, NO_FILTER, rowState, sortRows } from '../../src/lib/fleetTable';
import { parseDec } from '../../src/lib/decimal';
import type { FleetRow } from '../../src/lib/wire';

function row(id: string, over: Partial<FleetRow> = {}): FleetRow {
  return {
    client_id: id, legal_name: id.toUpperCase() + ' Sp. z o.o.', host: 'hel1', markup: '1.3', container: null,
    tracker_container: null, docker_error: null, uptime_seconds: null, tracker_reachable: true, tracker_error: null,
    tracker_version: null, last_sync_state: 'ok', last_sync_at: null, last_sync_error: null, today_requests: 1,
    today_tokens: 1, today_raw_cost_usd: '1', today_client_cost_usd: '1.3', month_client_cost_usd: '13',
    month_raw_cost_usd: '10', limit: null, projection: null, key_state: 'ok', key_label: null,
    key_limit_remaining_usd: null, alerts: [], data_fetched_at: null, data_age_seconds: null,
    refreshed_at: '2026-12-07T01:00:00Z', ...over,
  };
}

const ids = (rows: FleetRow[]) => rows.map((r) => r.client_id);

describe('compareDec', () => {
  it('compares exactly where floats cannot', () => {
    const a = parseDec('0.30000000000000001')!;
    const b = parseDec('0.3')!;
    expect(compareDec(a, b)).toBe(1);
    expect(compareDec(parseDec('10')!, parseDec('9.999999999999999999')!)).toBe(1);
    expect(compareDec(parseDec('-1')!, parseDec('0.000001')!)).toBe(-1);
    expect(compareDec(parseDec('1.50')!, parseDec('1.5')!)).toBe(0);
  });
});

describe('sortRows', () => {
  const rows = [
    row('b', { today_client_cost_usd: '0.30000000000000001' }),
    row('a', { today_client_cost_usd: '0.3' }),
    row('c', { today_client_cost_usd: null }),
    row('d', { today_client_cost_usd: '0.3' }),
    row('e', { today_client_cost_usd: '12' }),
  ];
  it('sorts money by its exact decimal, missing values last both ways, ties stable', () => {
    expect(ids(sortRows(rows, 'today', 'asc'))).toEqual(['a', 'd', 'b', 'e', 'c']);
    expect(ids(sortRows(rows, 'today', 'desc'))).toEqual(['e', 'b', 'a', 'd', 'c']);
  });
  it('sorts ids naturally and alerts by worst level', () => {
    const r = [row('client-10'), row('client-9'), row('client-100')];
    expect(ids(sortRows(r, 'client', 'asc'))).toEqual(['client-9', 'client-10', 'client-100']);
    const al = [
      row('w', { alerts: [{ level: 'warning', message: 'x' }] }),
      row('c', { alerts: [{ level: 'critical', message: 'x' }] }),
      row('n'),
    ];
    expect(ids(sortRows(al, 'alerts', 'desc'))).toEqual(['c', 'w', 'n']);
  });
  it('does not change its input', () => {
    const before = ids(rows);
    sortRows(rows, 'today', 'desc');
    expect(ids(rows)).toEqual(before);
  });
});

describe('filterRows', () => {
  const rows = [
    row('acme', { host: 'hel1', legal_name: 'ACME Sp. z o.o.' }),
    row('kowalski', { host: 'waw1', legal_name: 'Kancelaria Kowalski', alerts: [{ level: 'critical', message: 'x' }] }),
    row('tiny', { host: 'waw1', docker_error: 'down', alerts: [{ level: 'warning', message: 'x' }] }),
  ];
  it('filters by host, state and alerts, and searches id and name', () => {
    expect(ids(filterRows(rows, { ...NO_FILTER, host: 'waw1' }))).toEqual(['kowalski', 'tiny']);
    expect(rowState(rows[2])).toBe('host unreachable');
    expect(ids(filterRows(rows, { ...NO_FILTER, state: 'host unreachable' }))).toEqual(['tiny']);
    expect(ids(filterRows(rows, { ...NO_FILTER, alerts: 'none' }))).toEqual(['acme']);
    // Needing attention comes from the Alerts view's per-client counts, not the row.
    expect(ids(filterRows(rows, { ...NO_FILTER, alerts: 'attention' }, { tiny: 2, acme: 0 }))).toEqual(['tiny']);
    expect(ids(filterRows(rows, { ...NO_FILTER, alerts: 'attention' }))).toEqual([]);
    expect(ids(filterRows(rows, { ...NO_FILTER, alerts: 'warning' }))).toEqual(['kowalski', 'tiny']);
    expect(ids(filterRows(rows, { ...NO_FILTER, alerts: 'critical' }))).toEqual(['kowalski']);
    expect(ids(filterRows(rows, { ...NO_FILTER, query: 'kancel' }))).toEqual(['kowalski']);
    expect(ids(filterRows(rows, { ...NO_FILTER, query: ' TIN ' }))).toEqual(['tiny']);
    expect(ids(filterRows(rows, { ...NO_FILTER, host: 'hel1', query: 'kow' }))).toEqual([]);
  });
});
