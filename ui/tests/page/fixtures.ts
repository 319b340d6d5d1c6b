// Mock replies of the console's commands, typed with the generated wire types so that a
// change of the Rust side fails `npm run check` here too, not only in the app.
import type {
  AppInfo, BillingReport, Dashboard, DayPoint, FleetRow, KsefInvoiceRow, KsefTokenStatus, MaskedKey, PlnRate,
} from '../../src/lib/wire';

const today = new Date().toISOString().slice(0, 10);
const now = new Date().toISOString();

export function row(id: string, over: Partial<FleetRow> = {}): FleetRow {
  return {
    client_id: id, legal_name: id.toUpperCase() + ' Sp. z o.o.', host: 'hel1', markup: '1.3',
    container: { id: 'c-' + id, name: 'mai-' + id + '-chat', client: id, role: 'chat', image: 'ghcr.io/open-webui/open-webui:0.6', version: '0.6',
      state: 'running', health: 'healthy', started_at: now, restart_count: 0 },
    tracker_container: null, docker_error: null, uptime_seconds: 7260, tracker_reachable: true, tracker_error: null,
    tracker_version: '0.1.0', last_sync_state: 'ok', last_sync_at: now, last_sync_error: null, today_requests: 1234,
    today_tokens: 1234567, today_raw_cost_usd: '9.615384615', today_client_cost_usd: '12.5', month_client_cost_usd: '321.987', month_raw_cost_usd: '247.682',
    projection: { month_to_date_usd: '321.987', projected_usd: '1395.277', monthly_limit_usd: '500', projected_percent_of_limit: '279.06',
      limit_reached: false, exceeds_on: '2026-12-12' },
    limit: { monthly_limit_usd: '500', used_usd: '321.987', percent_used: '64.40', level: 'ok' }, key_state: 'ok',
    key_label: 'sk-or-v1-…abcd', key_limit_remaining_usd: '150.25', alerts: [], data_fetched_at: now, data_age_seconds: 0,
    refreshed_at: now, ...over,
  };
}

export function fixtures(scenario: string) {
  const rows = [
    row('acme'),
    row('tiny', { host: 'swarm1', host_mode: 'swarm', today_client_cost_usd: '0.000863525', today_requests: 2, today_tokens: 150,
      limit: { monthly_limit_usd: '10', used_usd: '9.1', percent_used: '91.00', level: 'warning' },
      alerts: [{ level: 'warning', message: '91.00% of the monthly limit used' }] }),
    row('gone', { tracker_reachable: false, tracker_error: 'tracker http://10.0.0.9:8080 did not answer within 3000 ms',
      data_age_seconds: 1800, container: null, docker_error: 'no answer within 3000 ms',
      alerts: [{ level: 'critical', message: 'tracker unreachable: did not answer within 3000 ms' }] }),
  ];
  const days: DayPoint[] = Array.from({ length: 30 }, (_, i) => {
    const d = new Date(Date.now() - (29 - i) * 86400000).toISOString().slice(0, 10);
    return { date: d, requests: 40 + i * 3, tokens: 50000 + i * 1000, raw_cost_usd: (1 + i / 10).toFixed(4), client_cost_usd: ((1 + i / 10) * 1.3).toFixed(5) };
  });
  days[29].date = today;
  if (scenario === 'small-costs') {
    // A quiet client: 0.000300 to 0.002098 USD a day, a few requests (issue 14: uPlot's
    // own axis printed "0.001, 0.001, 0.002, 0.002" here).
    days.forEach((d, i) => {
      d.client_cost_usd = '0.' + String(300 + i * 62).padStart(6, '0');
      d.raw_cost_usd = '0.' + String(231 + i * 48).padStart(6, '0');
      d.requests = 1 + (i % 4);
    });
  }
  const pln: PlnRate = scenario === 'no-pln'
    ? { available: false, rate: null, table_no: null, effective_date: null, stale: false, error: 'NBP did not answer within 8 s', pending: false }
    : { available: true, rate: '4.0000', table_no: '226/C/NBP/2026', effective_date: today, stale: false, error: null, pending: false };
  const dashboard = (id: string): Dashboard => ({
    client_id: id, legal_name: id.toUpperCase() + ' Sp. z o.o.', markup: '1.3', live: true, pull_error: null,
    // `backup-lost-later`: each reload is a new one, so the Backups panel reads its list again.
    updated_at: scenario === 'backup-lost-later' ? new Date().toISOString() : now,
    today: { date: today, requests: 1234, tokens: 1234567, raw_cost_usd: '9.615384615', client_cost_usd: '12.5' },
    month_requests: 23456, month_tokens: 98765432, month_raw_cost_usd: '247.682', month_client_cost_usd: '321.987',
    daily_average_client_cost_usd: '13.999434782609', monthly_limit_usd: '500', days,
    by_user: [
      { key: 'u1', label: 'Anna Nowak', requests: 600, tokens: 700000, prompt_tokens: 500000, completion_tokens: 200000, raw_cost_usd: '5', client_cost_usd: '6.5' },
      { key: '', label: '(unknown user)', requests: 3, tokens: 900, prompt_tokens: 800, completion_tokens: 100, raw_cost_usd: '0.0001', client_cost_usd: '0.00013' },
    ],
    by_model: [
      { key: 'openai/gpt-4o-mini', label: 'openai/gpt-4o-mini', requests: 1000, tokens: 1000000, prompt_tokens: 800000, completion_tokens: 200000, raw_cost_usd: '1.2', client_cost_usd: '1.56' },
    ],
    by_task: [
      { key: 'chat', label: 'chat', requests: 300, tokens: 600000, prompt_tokens: 450000, completion_tokens: 150000, raw_cost_usd: '3', client_cost_usd: '3.9' },
      { key: 'title_generation', label: 'title_generation', requests: 300, tokens: 90000, prompt_tokens: 80000, completion_tokens: 10000, raw_cost_usd: '0.6', client_cost_usd: '0.78' },
      { key: 'follow_up_generation', label: 'follow_up_generation', requests: 300, tokens: 90000, prompt_tokens: 80000, completion_tokens: 10000, raw_cost_usd: '0.4', client_cost_usd: '0.52' },
      { key: '(unknown)', label: '(unknown)', requests: 3, tokens: 900, prompt_tokens: 800, completion_tokens: 100, raw_cost_usd: '0.0001', client_cost_usd: '0.00013' },
    ],
    background_share: '0.25',
    by_group: [
      { key: 'Księgowość, Zarząd', label: 'Księgowość, Zarząd', requests: 600, tokens: 700000, prompt_tokens: 500000, completion_tokens: 200000, raw_cost_usd: '4', client_cost_usd: '5.2' },
      { key: '(no group)', label: '(no group)', requests: 3, tokens: 900, prompt_tokens: 800, completion_tokens: 100, raw_cost_usd: '0.0001', client_cost_usd: '0.00013' },
    ],
    top_chats: [
      { key: '6c1f0a2e-1b7a-4d0e-9d0e-0f6a3b2c1d00', label: '6c1f0a2e-1b7a-4d0e-9d0e-0f6a3b2c1d00', requests: 12, tokens: 40000, prompt_tokens: 30000, completion_tokens: 10000, raw_cost_usd: '0.9', client_cost_usd: '1.17' },
    ],
    chat_count: 57,
    pln,
  });
  const info: AppInfo = { version: '0.1.0', fleet_path: '/etc/mai/fleet.toml', load_error: null,
      keychain_error: scenario === 'no-keychain' ? 'the OS keychain is not available (no D-Bus session)' : null,
      clients: rows.map((r) => ({ id: r.client_id, legal_name: r.legal_name })), update_endpoint: 'http://127.0.0.1:8765/latest.json', billing_available: scenario.startsWith('billing'), ksef_available: scenario.startsWith('billing') };
  // October 2026 at 4.0000 PLN/USD, markup 1.3, no top-ups recorded (the card's 5.5 %
  // alone). acme: net 321.9866 USD = 1 287,95 zł, raw 990,73 zł, profit 297,22 zł; fees
  // 247.682 × 5.5 % = $13.62251 = 54,49 zł; after fees 242,73 zł; margins 297.22 / 1287.95
  // = 23.08 %, 242.73 / 1287.95 = 18.85 %. tiny's month rounds to 0,00 zł: not invoiced.
  // billing-deadline: kowalski's invoice is still to issue three days after the deadline.
  const late = scenario === 'billing-deadline';
  const billing: BillingReport = {
    month: '2026-10', today: late ? '2026-11-18' : today, provisional: false,
    usd_rate: { mid: '4.0000', table_no: '210/A/NBP/2026', effective_date: '2026-10-30' }, rate_error: null,
    clients: [
      { org_id: 'acme', name: 'ACME Sp. z o.o.', status: 'issued', invoice_number: 'FV/2026/10/001', requests: 1234, raw_cost_usd: '247.682', late_usage_usd: '0.0004', missing: [],
        profit: { net_pln: '1287.95', profit_pln: '297.22', byok: false, fees_usd: '13.62251', fees_pln: '54.49', profit_after_fees_usd: '60.68209',
          profit_after_fees_pln: '242.73', margin_before_fees_percent: '23.08', effective_margin_percent: '18.85' },
        zero_amounts: false },
      { org_id: 'tiny', name: null, status: 'no_usage', invoice_number: null, requests: 2, raw_cost_usd: '0.00066', late_usage_usd: '0', missing: ['NIP'],
        profit: { net_pln: '0.00', profit_pln: '0.00', byok: false, fees_usd: '0.0000363', fees_pln: '0.00', profit_after_fees_usd: '0.0001617',
          profit_after_fees_pln: '0.00', margin_before_fees_percent: null, effective_margin_percent: null },
        zero_amounts: true },
      ...(late ? [{ org_id: 'kowalski', name: 'Kancelaria Kowalski i Wspólnicy sp.k.', status: 'ready_to_issue' as const, invoice_number: null, requests: 310,
        raw_cost_usd: '120.5', late_usage_usd: '0', missing: [],
        profit: { net_pln: '626.60', profit_pln: '144.60', byok: false, fees_usd: '6.6275', fees_pln: '26.51', profit_after_fees_usd: '29.5225',
          profit_after_fees_pln: '118.09', margin_before_fees_percent: '23.08', effective_margin_percent: '18.85' },
        zero_amounts: false }] : []),
    ],
    totals: late
      ? { requests: 1546, raw_cost_usd: '368.18266', client_net_usd: '478.637458', profit_usd: '110.454798', net_pln: '1914.55', vat_pln: '440.35',
        gross_pln: '2354.90', profit_pln: '441.82', late_usage_usd: '0.0004', fees_usd: '20.2500463', fees_pln: '81.00',
        profit_after_fees_usd: '90.2047517', profit_after_fees_pln: '360.82', margin_before_fees_percent: '23.08', effective_margin_percent: '18.85' }
      : { requests: 1236, raw_cost_usd: '247.68266', client_net_usd: '321.987458', profit_usd: '74.304798', net_pln: '1287.95', vat_pln: '296.23',
        gross_pln: '1584.18', profit_pln: '297.22', late_usage_usd: '0.0004', fees_usd: '13.6225463', fees_pln: '54.49',
        profit_after_fees_usd: '60.6822517', profit_after_fees_pln: '242.73', margin_before_fees_percent: '23.08', effective_margin_percent: '18.85' },
    fees_basis: 'credit-purchase fee 5.5% of credits used: top-up sizes unknown (no [[fees.purchases]] this month, no fees.typical_purchase_usd), '
      + 'so the minimum fee is assumed not to apply (top-ups of $14.55 or more); record purchases or set typical_purchase_usd for the exact figure',
    issue_deadline: '2026-11-15',
    deadline_warning: late
      ? 'invoices for 2026-10 are late: the deadline was 2026-11-15 (VAT Act art. 106i ust. 1: the 15th of the month after the service), 3 day(s) ago; still to issue: kowalski. Issue them now'
      : null,
  };
  const keys: MaskedKey[] = rows.flatMap((r): MaskedKey[] => [
    { client: r.client_id, kind: 'open-router', masked: r.client_id === 'acme' ? 'sk-or-v1-…abcd' : null, error: null },
    { client: r.client_id, kind: 'tracker-token', masked: null, error: null },
  ]);
  // The month's invoices in KSeF, one of each state (scenario billing*).
  const ksefRow = (over: Partial<KsefInvoiceRow>): KsefInvoiceRow => ({
    org_id: 'acme', client_name: 'ACME Sp. z o.o.', number: null, kind: 'VAT', corrects_ksef_number: null, corrects_number: null,
    state: { kind: 'prepared' }, ksef_number: null, acquisition_date: null, rejection: null, error: null, gross: '0', currency: 'PLN',
    upo_available: false, ...over,
  });
  const ksefRows: KsefInvoiceRow[] = [
    ksefRow({ number: 'FV/2026/10/0001', state: { kind: 'accepted' }, ksef_number: '1234563218-20261103-0100001AF629-1C',
      acquisition_date: '2026-11-03T09:15:42Z', gross: '1584.18', upo_available: true }),
    ksefRow({ number: 'FK/2026/10/0001', kind: 'KOR', corrects_number: 'FV/2026/09/0001', corrects_ksef_number: '1234563218-20261002-0100002B1C44-7E',
      state: { kind: 'accepted' }, ksef_number: '1234563218-20261103-0100001AF62A-52', acquisition_date: '2026-11-03T09:16:05Z',
      gross: '-123.00', upo_available: true }),
    ksefRow({ org_id: 'kowalski', client_name: 'Kancelaria Kowalski i Wspólnicy sp.k.', number: 'FV/2026/10/0002', state: { kind: 'rejected' },
      gross: '615.00', rejection: {
        code: 440, description: 'Duplikat faktury',
        details: ['Faktura o numerze FV/2026/10/0002 została już przyjęta', 'originalKsefNumber: 1234563218-20261015-0100003C2D55-4B'],
        fix: 'KSeF already has an invoice with this seller NIP, kind and number (numbers must not repeat for 10 years). If the details name this invoice\'s own earlier send, it was issued then: nothing to do. Otherwise the numbering repeats numbers: make invoice_number_format in the billing file contain the year ({yyyy}) and issue the invoice again.',
      } }),
    ksefRow({ org_id: 'baltic', client_name: 'Baltic Trade S.A.', number: 'FV/2026/10/0003', gross: '2460.00',
      error: 'KSeF did not answer within 30 s (https://api-test.ksef.mf.gov.pl/v2): the invoice was not taken; sending again is safe' }),
    ksefRow({ org_id: 'nordic', client_name: 'Nordic Data ApS', number: 'FV/2026/10/0004', state: { kind: 'sent' }, gross: '310.50', currency: 'USD' }),
    ksefRow({ org_id: 'tiny', client_name: 'TINY Sp. z o.o.', state: { kind: 'not_issued', reason: 'missing invoice data: NIP' } }),
  ];
  const ksefToken: KsefTokenStatus = {
    seller_nip: '1234563218', environment: 'test', base_url: 'https://api-test.ksef.mf.gov.pl/v2',
    present: scenario !== 'billing-no-token', masked: scenario !== 'billing-no-token' ? '…6d5e' : null,
  };
  return {
    info,
    billing,
    ksefRows,
    ksefToken,
    // What Ops::ksef_send returns when KSeF cannot be reached (mai-ksef's KsefError::Transport).
    ksefDown: 'KSeF POST /auth/challenge: could not reach https://api-test.ksef.mf.gov.pl/v2: connection refused; check the network, KSEF_BASE_URL and KSEF_CA_CERT, then retry',
    nbpDown: 'NBP unreachable: could not get table A USD for the invoice rate of reference date 2026-10-31 (dates 2026-10-17..2026-10-30) from http://127.0.0.1:18101/api after 2 attempt(s): connection refused. Check the network or NBP_BASE_URL and retry',
    rows,
    dashboard,
    keys,
  };
}
