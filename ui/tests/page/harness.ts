// The real app with Tauri's mockIPC in front: the page tests drive this build.
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { fixtures } from './fixtures';
import { lifecycleMock } from './lifecycle-mock';
import { changeUpdateMock } from './mock_change_update';
import { alertsMock } from './mock_alerts';
import { backupMock } from './mock_backup';
import { overviewMock } from './mock_overview';
import type {
  ContainerInfo, ExportProgress, InvoiceExportRequest, InvoiceExportResult, KsefInvoiceRow, KsefSendProgress, KsefSendSummary,
  PrivacyErasure, PrivacyExportResult, SecretKind, SyncOutcome, SyncProgress, UpdateCheck,
} from '../../src/lib/wire';

/** Events as the Rust side emits them, typed by their payload. */
const emitSyncProgress = (p: SyncProgress) => emit('sync-progress', p);
const emitExportProgress = (p: ExportProgress) => emit('billing-export-progress', p);
const emitKsefProgress = (p: KsefSendProgress) => emit('ksef-send-progress', p);

declare global {
  interface Window {
    __calls: { cmd: string; args: unknown }[];
    __scenario: string;
    /** Lets a page test hold an export mid-way (after the first progress events). */
    __releaseExport?: () => void;
    /** Likewise a KSeF send, after the second invoice went out. */
    __releaseKsefSend?: () => void;
  }
}
window.__calls = [];
const scenario = new URLSearchParams(location.search).get('scenario') ?? 'default';
window.__scenario = scenario;
const data = fixtures(scenario);
const alerts = alertsMock(scenario);

mockIPC(
  async (cmd, args) => {
    window.__calls.push({ cmd, args });
    switch (cmd) {
      case 'app_info':
        return data.info;
      case 'fleet_status':
        return data.rows;
      case 'client_dashboard':
        return data.dashboard((args as { clientId: string }).clientId);
      case 'sync_clients': {
        const ids = (args as { clientIds: string[] }).clientIds;
        const out = ids.map((id): SyncOutcome => ({
          client_id: id, ok: id !== 'gone', status: id === 'gone' ? 'unreachable' : 'ok', checked: 3, confirmed: 3,
          corrected: 0, pulled: 2, error: id === 'gone' ? 'tracker http://10.0.0.9:8080 is unreachable' : null,
        }));
        for (const [i, o] of out.entries()) await emitSyncProgress({ done: i + 1, total: out.length, outcome: o });
        return out;
      }
      case 'restart_container': {
        const c: ContainerInfo = { ...data.rows[0].container!, state: 'running' };
        return c;
      }
      case 'keys_list':
        return data.keys;
      case 'key_set': {
        const a = args as { clientId: string; kind: SecretKind; secret: string };
        const masked = 'sk-or-v1-…' + a.secret.slice(-4);
        const k = data.keys.find((k) => k.client === a.clientId && k.kind === a.kind);
        if (k) k.masked = masked;
        return masked;
      }
      case 'check_update': {
        const u: UpdateCheck = { available: true, version: '0.2.0', notes: 'Faster refresh', current: '0.1.0', error: null };
        return u;
      }
      case 'logs_start':
        return 1;
      case 'logs_stop':
        return null;
      case 'first_paint':
        return 1;
      case 'privacy_export': {
        const a = args as { clientId: string; userId: string | null; email: string | null };
        const r: PrivacyExportResult = {
          client_id: a.clientId, from_cache: false, warning: null, audit_log: '/home/anna/.local/share/mai/audit.log',
          export: {
            org_id: a.clientId, subject: { id: a.userId, email: a.email }, generated_at: '2026-11-23T10:00:00Z',
            requests: 1, tokens: { prompt: 100, completion: 20, reasoning: 0, cached: 0, total: 120 }, raw_cost_usd: '0.00066',
            events: [],
          },
        };
        return r;
      }
      case 'privacy_erase': {
        const a = args as { clientId: string; userId: string | null; email: string | null };
        if (!a.userId && !a.email) throw 'a privacy request needs the person\'s user id or e-mail (or both)';
        const r: PrivacyErasure = {
          client_id: a.clientId, subject_hash: 'ab'.repeat(32), pseudonym: 'erased-9f86d081884c7d659a2feaa0c55ad015',
          tracker_events: 600, cache_events: 600, journal_lines: 0, compacted: true, at: '2026-11-23T10:00:00Z',
          audit_log: '/home/anna/.local/share/mai/audit.log',
        };
        return r;
      }
      case 'billing_report':
        return data.billing;
      case 'billing_export': {
        const req = (args as { request: InvoiceExportRequest }).request;
        if (scenario === 'billing-nbp-down') throw data.nbpDown;
        const dir = req.out_dir ?? `/home/anna/mai-invoices/${req.month}`;
        const file = `${dir}/FV_2026_10_0002.${req.format === 'ksef' ? 'xml' : 'pdf'}`;
        await emitExportProgress({ event: 'issued', number: 'FV/2026/10/0002', org_id: 'acme' });
        await emitExportProgress({ event: 'skipped', org_id: 'tiny', reason: 'missing invoice data: NIP' });
        await emitExportProgress({ event: 'started', total: 2 });
        await emitExportProgress({ event: 'wrote', path: file, done: 1, total: 2 });
        await new Promise<void>((r) => (window.__releaseExport = r));
        const file2 = file.replace('0002', '0003');
        await emitExportProgress({ event: 'wrote', path: file2, done: 2, total: 2 });
        const result: InvoiceExportResult = {
          out_dir: dir, format: req.format, files: [file, file2],
          clients: [
            { org_id: 'acme', invoice_number: 'FV/2026/10/0002', newly_issued: true, files: [file], skipped: null },
            { org_id: 'kowalski', invoice_number: 'FV/2026/10/0003', newly_issued: false, files: [file2], skipped: null },
            { org_id: 'tiny', invoice_number: null, newly_issued: false, files: [], skipped: 'missing invoice data: NIP' },
          ],
        };
        return result;
      }
      case 'ksef_token_status':
        return data.ksefToken;
      case 'ksef_token_set': {
        const t = (args as { token: string }).token.trim();
        if (/\s/.test(t)) throw `the KSeF token …${t.slice(-4)} contains spaces, line breaks or control characters; paste it again as one line`;
        data.ksefToken.present = true;
        data.ksefToken.masked = '…' + t.slice(-4);
        return data.ksefToken;
      }
      case 'ksef_token_delete':
        data.ksefToken.present = false;
        data.ksefToken.masked = null;
        return data.ksefToken;
      case 'ksef_status':
        return data.ksefRows;
      case 'ksef_send': {
        const a = args as { month: string; clientId: string | null };
        if (scenario === 'billing-ksef-down') throw data.ksefDown;
        const todo = data.ksefRows.filter((r) => ['prepared', 'sent', 'rejected'].includes(r.state.kind) && (!a.clientId || r.org_id === a.clientId));
        const total = todo.length;
        await emitKsefProgress({ done: 0, total, current: null, phase: 'connecting' });
        await emitKsefProgress({ done: 0, total, current: todo[0]?.number ?? null, phase: 'sending' });
        await emitKsefProgress({ done: 1, total, current: todo[1]?.number ?? null, phase: 'sending' });
        await new Promise<void>((r) => (window.__releaseKsefSend = r));
        await emitKsefProgress({ done: total, total, current: null, phase: 'receipts' });
        // KSeF's verdicts: the duplicate is refused again, the others are accepted.
        for (const [i, r] of todo.entries()) {
          if (r.state.kind === 'rejected') continue;
          r.state = { kind: 'accepted' };
          r.error = null;
          r.ksef_number = `1234563218-20261104-01000020000${i}-0${i}`;
          r.acquisition_date = '2026-11-04T08:00:00Z';
          r.upo_available = true;
        }
        await emitKsefProgress({ done: total, total, current: null, phase: 'done' });
        const count = (k: KsefInvoiceRow['state']['kind']) => todo.filter((r) => r.state.kind === k).length;
        const summary: KsefSendSummary = {
          month: a.month, accepted: count('accepted'), rejected: count('rejected'), failed: 0, pending: 0, skipped: 0, rows: todo,
        };
        return summary;
      }
      case 'ksef_upo': {
        const a = args as { month: string; ksefNumber: string; outDir: string | null };
        return `${a.outDir ?? `/home/anna/mai-invoices/${a.month}`}/UPO_${a.ksefNumber}.xml`;
      }
      default: {
        // Onboarding and offboarding (issue 13): lifecycle-mock.ts.
        const r = await lifecycleMock(cmd, args, scenario);
        if (r !== undefined) return r;
        // The fleet overview (totals, projections) and usage exports: mock_overview.ts.
        const o = await overviewMock(cmd, args, scenario, data.rows);
        if (o !== undefined) return o;
        // Changing a client, its history, fleet updates: mock_change_update.ts.
        const c = await changeUpdateMock(cmd, args, scenario);
        if (c !== undefined) return c;
        // Alerts (issue 14): mock_alerts.ts.
        const al = await alerts(cmd, args);
        if (al !== undefined) return al;
        // Ledger backups (issue 14): mock_backup.ts.
        const b = await backupMock(cmd, args, scenario);
        if (b !== undefined) return b;
        throw `unknown command ${cmd}`;
      }
    }
  },
  { shouldMockEvents: true },
);

await import('../../src/main');
