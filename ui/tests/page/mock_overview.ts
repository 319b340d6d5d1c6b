// Mock replies of the fleet overview (issue 14): `fleet_overview` (rows + totals) and
// `usage_export` with its progress events. Scenarios: `fleet-200` (200 clients on three
// hosts), `totals-stale` (the display rate is the last known one), `no-credits` (no
// management key), `usage-export-fail`, `outside-pending` (the first overview came before
// NBP's and OpenRouter's answers; the next one has them), `widest-states` (the longest
// badge of every column: the fleet table's columns have fixed widths).
import { emit } from '@tauri-apps/api/event';
import { row } from './fixtures';
import type {
  AccountCredits, FleetOverview, FleetRow, FleetTotals, PlnRate, UsageExportProgress, UsageExportRequest, UsageExportResult,
} from '../../src/lib/wire';

declare global {
  interface Window {
    /** Lets a page test hold a usage export after its first progress events. */
    __releaseUsageExport?: () => void;
  }
}

const today = new Date().toISOString().slice(0, 10);

/** The longest state of each badged column, one row each way of being long. */
function widestRows(): FleetRow[] {
  const base = row('restarting-client');
  return [
    row('restarting-client', {
      container: { ...base.container!, state: 'restarting', health: 'unhealthy', restart_count: 1234 },
      tracker_reachable: false, tracker_error: 'did not answer within 3000 ms', data_age_seconds: 93784,
      last_sync_state: 'running', key_state: 'account_out_of_credits',
    }),
    row('another-client', { container: null, docker_error: 'ssh: connect to host hel1 port 22: Connection refused', last_sync_state: 'unknown', key_state: 'limit_reached' }),
    row('third-client', { last_sync_state: 'error', key_state: 'unknown' }),
  ];
}

/** 200 clients: hosts, states, costs and alerts varied so every sort and filter bites. */
export function manyRows(): FleetRow[] {
  const hosts = ['hel1', 'waw1', 'fra1'];
  return Array.from({ length: 200 }, (_, i) => {
    const id = `client-${String(i + 1).padStart(3, '0')}`;
    const cents = (i * 7919) % 100000; // distinct, unordered
    const r = row(id, {
      host: hosts[i % 3],
      legal_name: `Firma ${i + 1} Sp. z o.o.`,
      today_requests: (i * 37) % 500,
      today_client_cost_usd: i === 5 ? '0.000863525' : `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
      month_client_cost_usd: `${(i * 131) % 4000}.5`,
      alerts: i % 10 === 0 ? [{ level: 'critical', message: 'tracker unreachable' }] : i % 7 === 0 ? [{ level: 'warning', message: '85% of the monthly limit used' }] : [],
    });
    if (i % 25 === 3) r.container = { ...r.container!, state: 'exited' };
    return r;
  });
}

let overviews = 0;

function totals(scenario: string, rows: FleetRow[]): FleetTotals {
  const pending = scenario === 'outside-pending' && overviews === 1;
  const pln: PlnRate = pending
    ? { available: false, rate: null, table_no: null, effective_date: null, stale: false, error: 'asking NBP for the display rate', pending: true }
    : scenario === 'no-pln'
    ? { available: false, rate: null, table_no: null, effective_date: null, stale: false, error: 'NBP did not answer within 8 s', pending: false }
    : { available: true, rate: '4.0000', table_no: '236/C/NBP/2026', effective_date: today, stale: scenario === 'totals-stale', error: null, pending: false };
  const credits: AccountCredits = pending
    ? { available: false, total_credits_usd: null, total_usage_usd: null, remaining_usd: null,
        error: 'asking OpenRouter for the account\'s credits', pending: true }
    : scenario === 'no-credits'
    ? { available: false, total_credits_usd: null, total_usage_usd: null, remaining_usd: null,
        error: 'no OpenRouter management key in the keychain; set it with `maictl keys set-management` (key from stdin)', pending: false }
    : { available: true, total_credits_usd: '1500', total_usage_usd: '1012.4375', remaining_usd: '487.5625', error: null, pending: false };
  const a = (usd: string, plnV: string) => ({ usd, pln: pln.available ? plnV : null });
  return {
    day: today, month: today.slice(0, 7), clients: rows.length, clients_counted: rows.length - 1,
    missing: rows.length > 1 ? [rows[rows.length - 1].client_id] : [],
    today_client_cost: a('25.000863525', '100.00'), today_openrouter_cost: a('19.231048', '76.92'),
    today_profit: a('5.769815525', '23.08'),
    month_client_cost: a('643.974', '2575.90'), month_openrouter_cost: a('495.364', '1981.46'), month_profit: a('148.61', '594.44'),
    pln, credits,
    projection: { month_to_date_usd: '643.974', projected_usd: '2790.554', monthly_limit_usd: '1010',
      projected_percent_of_limit: '276.29', limit_reached: false, exceeds_on: today.slice(0, 8) + '12' },
  };
}

export async function overviewMock(cmd: string, args: unknown, scenario: string, rows: FleetRow[]): Promise<unknown> {
  switch (cmd) {
    case 'fleet_overview': {
      overviews += 1;
      const r = scenario === 'fleet-200' ? manyRows() : scenario === 'widest-states' ? widestRows() : rows;
      const o: FleetOverview = { rows: r, totals: totals(scenario, r) };
      return o;
    }
    case 'usage_export': {
      const req = (args as { request: UsageExportRequest }).request;
      if (scenario === 'usage-export-fail') {
        throw `usage export: writing ${req.path} failed: Permission denied (os error 13); check the path and free space`;
      }
      const total = req.kind === 'daily' ? 31 : 2400;
      const progress = (done: number) => emit('usage-export-progress', { client: req.client, done, total } satisfies UsageExportProgress);
      await progress(0);
      await progress(Math.min(1000, total));
      await new Promise<void>((r) => (window.__releaseUsageExport = r));
      await progress(total);
      const result: UsageExportResult = {
        client: req.client, month: req.month, kind: req.kind, format: req.format,
        path: req.path ?? `/home/anna/mai-usage/${req.client}-${req.month}-${req.kind}.${req.format}`,
        rows: total, raw_cost_usd: '247.682000007', client_cost_usd: '321.9866000091', pull_error: null,
      };
      return result;
    }
  }
  return undefined;
}
