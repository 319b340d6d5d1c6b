// Mock replies of the Backups panel's commands (issue 14), typed with the generated wire
// types. Scenarios: `backup-none` (no [backup] in the fleet file), `backup-refused` (the
// tracker already holds events: the restore is refused as the Rust side words it),
// `backup-lost` (the tracker's ledger is empty while the cache holds the month),
// `backup-lost-later` (the ledger is lost when the test sets `window.__ledgerLost`).
import { emit } from '@tauri-apps/api/event';
import type { BackupManifest, BackupOutcome, ClientBackups, RebuildReport, RestoreResult } from '../../src/lib/wire';

const manifest = (at: string, events: number, cost: string, kind: 'tracker' | 'rebuilt' = 'tracker'): BackupManifest => {
  const stamp = at.replace(/[-:]/g, '').replace('.000', '');
  const file = `acme-${stamp}${kind === 'rebuilt' ? '-rebuilt' : ''}.db`;
  return {
    client_id: 'acme', org_id: 'acme', kind, file, path: `/home/anna/mai-backups/acme/${file}`, taken_at: at,
    sha256: '9f2c1a0e5b7d3c4f8a6e2d1b0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7', size_bytes: 1056768 + events * 10,
    events, cost_usd: cost, months: [{ month: at.slice(0, 7), events, cost_usd: cost }],
  };
};

let restored = false;
let list: BackupManifest[] = [
  manifest('2026-12-06T02:00:00Z', 1204, '312.418822'),
  manifest('2026-12-05T02:00:00Z', 1150, '298.1'),
];

export async function backupMock(cmd: string, args: unknown, scenario: string): Promise<unknown> {
  const a = args as { clientId: string; file?: string; month?: string | null; withCache?: boolean };
  switch (cmd) {
    case 'backup_list': {
      const lostLater = scenario === 'backup-lost-later' && (window as { __ledgerLost?: boolean }).__ledgerLost === true;
      const lost = (scenario === 'backup-lost' && !restored) || lostLater;
      const ledger = {
        month: '2026-12', tracker_events: lost ? 0 : 1240,
        tracker_cost_usd: lost ? '0' : '320.5', tracker_error: null,
        cache_events: 1240, cache_cost_usd: '320.5',
      };
      const r: ClientBackups = scenario === 'backup-none'
        ? { client_id: a.clientId, dir: null, backups: [], every_seconds: null, keep: 14, problems: [], ledger: null }
        : { client_id: a.clientId, dir: `/home/anna/mai-backups/${a.clientId}`, backups: list, every_seconds: 86400, keep: 14, problems: [], ledger };
      return r;
    }
    case 'backup_now': {
      const total = 1070000;
      for (const b of [0, 262144, 524288, total]) await emit('backup-progress', [a.clientId, b, total]);
      const m = manifest('2026-12-07T02:10:00Z', 1230, '318.0044');
      list = [m, ...list];
      const r: BackupOutcome = { client_id: a.clientId, manifest: m, error: null, pruned: [] };
      return r;
    }
    case 'backup_restore': {
      if (scenario === 'backup-refused') {
        throw 'backup: tracker http://127.0.0.1:18100/ answered 409: this tracker\'s ledger already holds 1204 events; a restore never overwrites a ledger in use: deploy a new tracker for this client (an empty data volume) and restore onto it';
      }
      const m = list.find((b) => b.path === a.file);
      const fromCache = a.withCache ? 1240 - (m?.events ?? 0) : 0;
      const r: RestoreResult = {
        client_id: a.clientId, file: a.file ?? '', sha256: m?.sha256 ?? '', events: (m?.events ?? 0) + fromCache,
        restored_at: '2026-12-07T02:12:00Z', from_cache: fromCache,
      };
      restored = true;
      return r;
    }
    case 'backup_rebuild': {
      const m = manifest('2026-12-07T02:15:00Z', 1190, '309.5', 'rebuilt');
      const r: RebuildReport = {
        client_id: a.clientId, from: '2026-12-01', to: '2026-12-07',
        days: [
          { date: '2026-12-01', source: 'unrecoverable', cached_events: 0, cached_usd: '0', activity_requests: 0, activity_usd: '0' },
          { date: '2026-12-02', source: 'cache', cached_events: 210, cached_usd: '55.12', activity_requests: 0, activity_usd: '0' },
          { date: '2026-12-03', source: 'activity', cached_events: 150, cached_usd: '40.5', activity_requests: 37, activity_usd: '9.877' },
          { date: '2026-12-04', source: 'cache', cached_events: 0, cached_usd: '0', activity_requests: 0, activity_usd: '0' },
          { date: '2026-12-07', source: 'cache_unverified', cached_events: 12, cached_usd: '3.01', activity_requests: 0, activity_usd: '0' },
        ],
        unrecoverable: ['2026-12-01'], activity_error: null, manifest: m,
      };
      list = [m, ...list];
      return r;
    }
    default:
      return undefined;
  }
}
