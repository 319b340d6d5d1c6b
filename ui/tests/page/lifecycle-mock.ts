// Mock replies of the life-cycle commands (onboarding, offboarding) for the page tests,
// typed with the generated wire types. The field rules mirror a few of the Rust side's
// (ops::lifecycle::validate), with its messages, so the form shows real-looking errors.
import { emit } from '@tauri-apps/api/event';
import type {
  FieldError, LifecycleProgress, LifecycleStep, OffboardCheck, OffboardResult, OnboardRequest, OnboardResult, StepState,
} from '../../src/lib/wire';

declare global {
  interface Window {
    /** Lets a page test hold onboarding mid-way (while waiting for the pair to answer). */
    __releaseOnboard?: () => void;
  }
}

const details: Partial<Record<LifecycleStep, string>> = {
  preflight: 'host local answers; images mai-tracker:0.1.0 and ghcr.io/open-webui/open-webui:v0.12.4 present',
  create_key: 'mai-kowalski-20261124101500 (sk-or-v1-…7f3a), limit $240.00 per month',
  store_secrets: 'OpenRouter key and tracker tokens in the keychain',
  create_network: 'mai-kowalski',
  create_volumes: 'mai-kowalski-tracker-data, mai-kowalski-chat-data, mai-kowalski-secrets',
  start_tracker: 'mai-kowalski-tracker (mai-tracker:0.1.0)',
  start_chat: 'mai-kowalski-chat (ghcr.io/open-webui/open-webui:v0.12.4)',
  wait_healthy: 'tracker ready, chat app answering',
  probe: 'generation gen-1732443312-probe metered',
  write_fleet: '/home/anna/mai/fleet.toml',
};

let clock = 0;
const progress = (event: string, client: string, step: LifecycleStep, state: StepState, detail: string | null = null) => {
  clock += 137 + (step === 'wait_healthy' ? 4200 : 0);
  const p: LifecycleProgress = { client_id: client, step, state, detail, elapsed_ms: clock };
  return emit(event, p);
};

function validate(r: OnboardRequest): FieldError[] {
  const e: FieldError[] = [];
  const c = r.client;
  if (!c.id) e.push({ field: 'client.id', message: 'required: a short id such as "acme" (letters, digits, \'-\' or \'_\')' });
  if (!c.legal_name) e.push({ field: 'client.legal_name', message: 'required: the buyer\'s name as invoices show it' });
  if (c.nip && c.nip.replace(/\D/g, '').endsWith('29')) {
    e.push({ field: 'client.nip', message: `NIP \`${c.nip}\` has a wrong check digit: re-type it from the client's documents` });
  }
  if (!c.address) e.push({ field: 'client.address', message: 'required: street and number (the postal code and city go in the second line)' });
  if (c.markup && !/^\d+(\.\d+)?$/.test(c.markup)) {
    e.push({ field: 'client.markup', message: `"${c.markup}" is not a decimal number; write e.g. 1.3` });
  }
  if (!r.deploy.tracker_port) e.push({ field: 'deploy.tracker_port', message: 'required: a free port on the host (1-65535)' });
  if (r.deploy.chat_port && r.deploy.chat_port === r.deploy.tracker_port) {
    e.push({ field: 'deploy.chat_port', message: `${r.deploy.chat_port} is also the tracker's port; each needs its own` });
  }
  return e;
}

const check = (id: string): OffboardCheck => ({
  client_id: id, legal_name: id.toUpperCase() + ' Sp. z o.o.', host: 'hel1', offboarded: null,
  billing: [
    { month: '2026-10', row: { org_id: id, name: id.toUpperCase() + ' Sp. z o.o.', status: 'issued', invoice_number: 'FV/2026/10/0002',
      requests: 23456, raw_cost_usd: '247.682', late_usage_usd: '0', missing: [], profit: null, zero_amounts: false }, note: null },
    { month: '2026-11', row: { org_id: id, name: id.toUpperCase() + ' Sp. z o.o.', status: 'provisional', invoice_number: null,
      requests: 1234, raw_cost_usd: '9.615384615', late_usage_usd: '0', missing: [], profit: null, zero_amounts: false }, note: null },
  ],
  containers: [`mai-${id}-chat`, `mai-${id}-tracker`], networks: [`mai-${id}`],
  volumes: [`mai-${id}-chat-data`, `mai-${id}-secrets`, `mai-${id}-tracker-data`],
  key_label: 'sk-or-v1-…abcd', archive_dir: '/home/anna/.local/share/mai-console/offboarded', warnings: [],
});

export async function lifecycleMock(cmd: string, args: unknown, scenario: string): Promise<unknown> {
  switch (cmd) {
    case 'fleet_hosts':
      return ['hel1', 'local'];
    case 'onboard_validate':
      return validate((args as { request: OnboardRequest }).request);
    case 'onboard_client': {
      const r = (args as { request: OnboardRequest }).request;
      const id = r.client.id;
      clock = 0;
      const plan: LifecycleStep[] = ['validate', 'preflight', 'create_key', 'store_secrets', 'create_network', 'create_volumes', 'start_tracker'];
      for (const s of plan) {
        await progress('onboard-progress', id, s, 'started');
        if (scenario === 'onboard-port-clash' && s === 'start_tracker') {
          const m = `port 127.0.0.1:${r.deploy.tracker_port} is already in use on the host (another program or container holds it); choose another tracker port`;
          await progress('onboard-progress', id, s, 'failed', m);
          for (const u of ['undo_containers', 'undo_network', 'undo_volumes', 'undo_key', 'undo_secrets'] as LifecycleStep[]) {
            await progress('onboard-progress', id, u, 'done', u === 'undo_key' ? 'mai-kowalski-20261124101500' : null);
          }
          throw `onboarding ${id} failed at start_tracker: ${m}. Undone: container mai-${id}-tracker removed; network mai-${id} removed; volumes removed; OpenRouter key mai-kowalski-20261124101500 disabled; keychain entries deleted; the fleet file was not changed`;
        }
        await progress('onboard-progress', id, s, 'done', details[s] ?? null);
      }
      await progress('onboard-progress', id, 'start_chat', 'done', details.start_chat!);
      await progress('onboard-progress', id, 'wait_healthy', 'started', 'tracker ready');
      await new Promise<void>((res) => (window.__releaseOnboard = res));
      for (const s of ['wait_healthy', 'probe', 'push_terms', 'write_fleet'] as LifecycleStep[]) {
        await progress('onboard-progress', id, s, 'done', details[s] ?? null);
      }
      const result: OnboardResult = {
        client_id: id, host: r.deploy.host, tracker_url: `http://127.0.0.1:${r.deploy.tracker_port}`,
        chat_url: `http://127.0.0.1:${r.deploy.chat_port}`, tracker_container: `mai-${id}-tracker`, chat_container: `mai-${id}-chat`,
        network: `mai-${id}`, volumes: [`mai-${id}-tracker-data`, `mai-${id}-chat-data`, `mai-${id}-secrets`],
        key_label: 'sk-or-v1-…7f3a', key_hash: '7f'.repeat(32), key_name: 'mai-kowalski-20261124101500', key_limit_usd: '240',
        signed_identity: r.deploy.signed_identity, probe_generation_id: 'gen-1732443312-probe',
        fleet_path: '/home/anna/mai/fleet.toml', audit_log: '/home/anna/.local/share/mai-console/audit.log', elapsed_ms: clock,
      };
      return result;
    }
    case 'offboard_check':
      return check((args as { clientId: string }).clientId);
    case 'offboard_client': {
      const id = (args as { clientId: string }).clientId;
      clock = 0;
      const d: Partial<Record<LifecycleStep, string>> = {
        final_sync: '12 events pulled', billing_check: '2026-10: Issued (FV/2026/10/0002); 2026-11: Provisional',
        disable_key: 'sk-or-v1-…abcd', archive_volume: `/home/anna/.local/share/mai-console/offboarded/${id}-20261124T101500Z/tracker-data.tar.gz (81920 bytes)`,
        export_ledger: '24690 events, $257.297384615 raw',
      };
      for (const s of ['final_sync', 'billing_check', 'disable_key', 'stop_containers', 'archive_volume', 'export_ledger',
        'remove_containers', 'remove_network', 'remove_volumes', 'forget_secrets', 'mark_offboarded'] as LifecycleStep[]) {
        await progress('offboard-progress', id, s, 'done', d[s] ?? null);
      }
      const r: OffboardResult = {
        client_id: id, offboarded_on: '2026-11-24', billing: check(id).billing, key_disabled: true,
        removed_containers: [`mai-${id}-chat`, `mai-${id}-tracker`], removed_networks: [`mai-${id}`],
        removed_volumes: [`mai-${id}-chat-data`, `mai-${id}-secrets`, `mai-${id}-tracker-data`],
        ledger_export: `/home/anna/.local/share/mai-console/offboarded/${id}-20261124T101500Z/ledger.sqlite`, ledger_events: 24690,
        ledger_raw_cost_usd: '257.297384615', archive: `/home/anna/.local/share/mai-console/offboarded/${id}-20261124T101500Z/tracker-data.tar.gz`,
        archive_bytes: 81920, warnings: [], audit_log: '/home/anna/.local/share/mai-console/audit.log', elapsed_ms: clock,
      };
      return r;
    }
    default:
      return undefined;
  }
}
