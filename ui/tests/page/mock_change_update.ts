// Mock replies of the client-change and fleet-update commands, typed with the generated
// wire types; the field errors stand in for the Rust side's checks (mai-ops owns them).
import { emit } from '@tauri-apps/api/event';
import type {
  ChangeCheck, ChangeReport, ClientChange, ClientFacts, ClientUpdateResult, FieldChange, ChangeFieldError, GateResult,
  HistoryEntry, UpdatePlan, UpdatePreview, UpdateProgress, UpdateSummary,
} from '../../src/lib/wire';

declare global {
  interface Window {
    /** Lets a page test hold a fleet update after the canary. */
    __releaseUpdate?: () => void;
  }
}

const emitUpdate = (p: UpdateProgress) => emit('fleet-update-progress', p);

const history: HistoryEntry[] = [
  {
    at: '2026-11-02T09:15:00Z', actor: 'anna', action: 'image_update', outcome: 'rolled_back',
    changes: [{ field: 'tracker_image', old: 'mai-tracker:0.1.0', new: 'mai-tracker:0.1.1-rc1' }],
    error: 'health gate failed (tracker_ready: the tracker container is not running (exit code 1))',
  },
  {
    at: '2026-10-20T14:02:00Z', actor: 'bartek', action: 'client_change', outcome: 'ok',
    changes: [{ field: 'monthly_limit_usd', old: '400', new: '500' }], error: null,
  },
];

function facts(id: string): ClientFacts {
  return {
    client_id: id,
    terms: { markup: { default_rate: '1.3', entries: [{ effective_from: '2026-11-16', rate: '1.35' }] }, monthly_limit_usd: '500' },
    invoice: [
      { field: 'legal_name', value: 'ACME Sp. z o.o.' }, { field: 'nip', value: '526-104-08-28' }, { field: 'vat_id', value: '' },
      { field: 'address', value: 'ul. Prosta 1' }, { field: 'address_line2', value: '00-001 Warszawa' }, { field: 'country', value: 'PL' },
      { field: 'invoice_currency', value: 'PLN' }, { field: 'vat', value: '23' }, { field: 'invoice_lines', value: 'by_model' },
      { field: 'hosting_eur', value: '25' }, { field: 'invoice_email', value: 'faktury@acme.example' },
    ],
    last_invoiced_month: '2026-10',
  };
}

/** limit / markup, cents down (the page only shows it; Rust computes the real one). */
const cap = (limit: string, rate: string) => (Math.floor((Number(limit) / Number(rate)) * 100) / 100).toFixed(2);

/** What the Rust side would say of these values (a few of its rules, for the page). */
function check(c: ClientChange): ChangeCheck {
  const errors: ChangeFieldError[] = [];
  const changes: FieldChange[] = [];
  const f = facts('acme');
  if (c.markup) {
    if (Number(c.markup.rate) < 1) errors.push({ field: 'markup', message: `markup ${c.markup.rate} is below 1, which would sell under cost; use e.g. 1.3 (+30%)` });
    if (c.markup.from <= '2026-10-31') errors.push({ field: 'markup_from', message: `${c.markup.from} is in or before 2026-10, which is invoiced (FV/2026/11/0001): an issued invoice is never repriced; choose a day from 2026-11-01 on` });
    changes.push({ field: 'markup', old: '1.35', new: `${c.markup.rate} from ${c.markup.from}` });
  }
  if (c.monthly_limit_usd !== undefined && c.monthly_limit_usd !== null) {
    if (!/^\d+(\.\d{1,2})?$/.test(c.monthly_limit_usd) && c.monthly_limit_usd !== 'none') {
      errors.push({ field: 'monthly_limit_usd', message: `"${c.monthly_limit_usd}" is not a decimal number; write e.g. "200" or "none"` });
    }
    changes.push({ field: 'monthly_limit_usd', old: '500', new: c.monthly_limit_usd === 'none' ? null : c.monthly_limit_usd });
  }
  for (const v of c.invoice) {
    if (v.field === 'nip' && v.value.replace(/-/g, '') !== '5261040828' && v.value.replace(/-/g, '') !== '7010002139') {
      errors.push({ field: 'nip', message: `"${v.value}" is not a valid Polish NIP (check digit mismatch); check the digits against the client's documents` });
    }
    if (v.field === 'invoice_currency' && !['PLN', 'USD', ''].includes(v.value.toUpperCase())) {
      errors.push({ field: 'invoice_currency', message: `"${v.value}" is not an invoice currency; invoices are issued in PLN or USD` });
    }
    if (v.field === 'invoice_email' && v.value && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.value)) {
      errors.push({ field: 'invoice_email', message: `"${v.value}" is not an e-mail address` });
    }
    const old = f.invoice.find((x) => x.field === v.field)?.value || null;
    changes.push({ field: v.field, old, new: v.value || null });
  }
  const limit = c.monthly_limit_usd ?? '500';
  return errors.length
    ? { errors, changes: [], warnings: [] }
    : { errors: [], changes, warnings: c.markup ? [`the OpenRouter key's cap is the limit divided by today's markup; from ${c.markup.from} the new markup makes it ${cap(limit, c.markup.rate)} USD: set the limit again on ${c.markup.from} (\`maictl clients set acme --monthly-limit ${limit}\`) so the cap follows`] : [] };
}

const preview: UpdatePreview = {
  canary: 'acme',
  clients: [
    { client_id: 'acme', host: 'hel1', targets: [{ role: 'tracker', container: 'acme-tracker', current_image: 'mai-tracker:0.1.0', current_id: 'sha256:aa11', target_image: 'mai-tracker:0.2.0', target_id: 'sha256:bb22', state: 'update', detail: null }] },
    { client_id: 'tiny', host: 'hel1', targets: [{ role: 'tracker', container: 'tiny-tracker', current_image: 'mai-tracker:0.1.0', current_id: 'sha256:aa11', target_image: 'mai-tracker:0.2.0', target_id: 'sha256:bb22', state: 'update', detail: null }] },
    { client_id: 'gone', host: 'fsn1', targets: [{ role: 'tracker', container: 'gone-tracker', current_image: 'mai-tracker:0.1.0', current_id: 'sha256:aa11', target_image: 'mai-tracker:0.2.0', target_id: null, state: 'image_missing', detail: 'host fsn1 has no image mai-tracker:0.2.0; build it there (deploy/build-images.sh) or `docker load` it' }] },
  ],
};

const gate = (check: GateResult['check'], passed: boolean, detail: string, ms: number): GateResult => ({ check, passed, detail, elapsed_ms: ms });
const passing = (): GateResult[] => [
  gate('tracker_ready', true, '/readyz answers 200', 1200),
  gate('probe_metered', true, 'generation gen-1767225600-Ab3dE5fG7hJ9kL1mN3pQ metered (0.0000027 USD, OpenRouter 412 ms)', 450),
  gate('chat_healthy', true, 'its health check passes', 900),
];
const result = (id: string, outcome: ClientUpdateResult['outcome'], g: GateResult[], detail: string, canary = false): ClientUpdateResult => ({
  client_id: id, outcome, canary, gate: g, detail, elapsed_ms: 4200,
  changes: outcome === 'skipped' || outcome === 'failed' ? [] : [{ field: 'tracker_image', old: 'mai-tracker:0.1.0', new: 'mai-tracker:0.2.0' }],
});

async function update(plan: UpdatePlan, scenario: string): Promise<UpdateSummary> {
  if (!plan.tracker_image && !plan.chat_image) throw 'fleet update: name the new image: a tracker image, a chat image, or both';
  await emitUpdate({ event: 'planned', preview });
  const failed = result('gone', 'failed', [], 'not updated: ' + preview.clients[2].targets[0].detail);
  await emitUpdate({ event: 'finished', result: failed });
  await emitUpdate({ event: 'phase', client_id: 'acme', phase: 'recreating', detail: 'tracker acme-tracker: mai-tracker:0.1.0 → mai-tracker:0.2.0' });
  await emitUpdate({ event: 'phase', client_id: 'acme', phase: 'gating', detail: 'health gate, up to 60 s' });
  if (scenario === 'update-canary-fails') {
    const g = [gate('tracker_ready', false, 'the tracker container is not running (exit code 1); last log lines: config: MAI_TRACKER_DB is not writable', 300)];
    await emitUpdate({ event: 'gate', client_id: 'acme', result: g[0] });
    await emitUpdate({ event: 'phase', client_id: 'acme', phase: 'rolling_back', detail: g[0].detail });
    const acme = result('acme', 'rolled_back', g, 'health gate failed (tracker_ready: the tracker container is not running (exit code 1)); rolled back to the previous image, the tracker is ready again', true);
    await emitUpdate({ event: 'finished', result: acme });
    const tiny = result('tiny', 'skipped', [], 'not updated: the canary acme failed its update');
    await emitUpdate({ event: 'finished', result: tiny });
    return {
      updated: 0, rolled_back: 1, skipped: 1, failed: 1, canary: 'acme', elapsed_ms: 6100,
      stopped: 'the canary acme was not updated (rolled back: health gate failed); the other clients were left as they are',
      clients: [acme, tiny, failed],
    };
  }
  for (const g of passing()) await emitUpdate({ event: 'gate', client_id: 'acme', result: g });
  const acme = result('acme', 'updated', passing(), 'updated; health gate passed', true);
  await emitUpdate({ event: 'finished', result: acme });
  await emitUpdate({ event: 'phase', client_id: 'tiny', phase: 'gating', detail: 'health gate, up to 60 s' });
  await emitUpdate({ event: 'gate', client_id: 'tiny', result: passing()[0] });
  await new Promise<void>((r) => (window.__releaseUpdate = r));
  const g = [passing()[0], passing()[1], gate('chat_healthy', false, 'its health check fails: connection refused', 60000)];
  for (const x of g.slice(1)) await emitUpdate({ event: 'gate', client_id: 'tiny', result: x });
  const tiny = result('tiny', 'rolled_back', g, 'health gate failed (chat_healthy: its health check fails: connection refused); rolled back to the previous image, the tracker is ready again');
  await emitUpdate({ event: 'finished', result: tiny });
  return { updated: 1, rolled_back: 1, skipped: 0, failed: 1, canary: 'acme', stopped: null, elapsed_ms: 71300, clients: [acme, tiny, failed] };
}

/** The reply of one of these commands, or `undefined` when `cmd` is not one of them. */
export async function changeUpdateMock(cmd: string, args: unknown, scenario: string): Promise<unknown> {
  switch (cmd) {
    case 'client_facts':
      return facts((args as { clientId: string }).clientId);
    case 'client_change_check':
      return check((args as { change: ClientChange }).change);
    case 'client_change': {
      const a = args as { clientId: string; change: ClientChange };
      const c = check(a.change);
      if (c.errors.length) throw `client ${a.clientId}: nothing was changed: ${c.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`;
      const limit = c.changes.some((x) => x.field === 'monthly_limit_usd');
      const r: ChangeReport = {
        client_id: a.clientId, changes: c.changes, openrouter_key: limit ? 'done' : 'not_needed',
        key_limit_usd: limit ? cap(a.change.monthly_limit_usd ?? '0', '1.35') : null,
        fleet_file: 'done', tracker: scenario === 'change-tracker-down' ? 'failed' : c.changes.some((x) => x.field === 'markup') || limit ? 'done' : 'not_needed',
        warnings: scenario === 'change-tracker-down'
          ? ['the tracker did not take the new terms (tracker http://10.0.0.9:8080 did not answer within 3000 ms); the fleet file has them and the OpenRouter key\'s cap, which enforces the limit, is already set, and the console pushes them to the tracker at its next refresh, or now with `maictl sync --client acme` once it answers']
          : [],
        audit_log: '/home/anna/.local/share/mai-console/audit.log',
      };
      history.unshift({ at: new Date().toISOString(), actor: 'anna', action: 'client_change', outcome: r.tracker === 'failed' ? 'partial' : 'ok', changes: c.changes, error: r.warnings[0] ?? null });
      return r;
    }
    case 'client_history':
      return history;
    case 'fleet_update_preview': {
      const plan = (args as { plan: UpdatePlan }).plan;
      if (!plan.tracker_image && !plan.chat_image) throw 'fleet update: name the new image: a tracker image, a chat image, or both';
      return preview;
    }
    case 'fleet_update':
      return update((args as { plan: UpdatePlan }).plan, scenario);
    default:
      return undefined;
  }
}
