// The real app with Tauri's mockIPC in front: the page tests drive this build.
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { fixtures } from './fixtures';

declare global {
  interface Window {
    __calls: { cmd: string; args: unknown }[];
    __scenario: string;
  }
}
window.__calls = [];
const scenario = new URLSearchParams(location.search).get('scenario') ?? 'default';
window.__scenario = scenario;
const data = fixtures(scenario);

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
        const out = ids.map((id) => ({
          client_id: id, ok: id !== 'gone', status: id === 'gone' ? 'unreachable' : 'ok', checked: 3, confirmed: 3,
          corrected: 0, pulled: 2, error: id === 'gone' ? 'tracker http://10.0.0.9:8080 is unreachable' : null,
        }));
        for (const [i, o] of out.entries()) await emit('sync-progress', { done: i + 1, total: out.length, outcome: o });
        return out;
      }
      case 'restart_container':
        return { ...data.rows[0].container, state: 'running' };
      case 'keys_list':
        return data.keys;
      case 'key_set': {
        const a = args as { clientId: string; kind: string; secret: string };
        const masked = 'sk-or-v1-…' + a.secret.slice(-4);
        const k = data.keys.find((k) => k.client === a.clientId && k.kind === a.kind);
        if (k) k.masked = masked;
        return masked;
      }
      case 'check_update':
        return { available: true, version: '0.2.0', notes: 'Faster refresh', current: '0.1.0', error: null };
      case 'logs_start':
        return 1;
      case 'logs_stop':
        return null;
      case 'first_paint':
        return 1;
      case 'billing_report':
        return data.billing;
      default:
        throw `unknown command ${cmd}`;
    }
  },
  { shouldMockEvents: true },
);

await import('../../src/main');
