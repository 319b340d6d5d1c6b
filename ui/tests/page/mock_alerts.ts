// Mock replies of the alert commands (issue 14), typed with the generated wire types. The
// evaluation itself is mai-ops' (crates/mai-ops/src/alerts.rs); this only keeps the state
// the view acts on. Scenario `alerts`: several alerts and a cleared one; any other: none.
import type { ActiveAlert, AlertsView, MuteRequest } from '../../src/lib/wire';

const EVALUATED = '2026-12-07T11:59:30Z';

function several(): ActiveAlert[] {
  const a = (x: Partial<ActiveAlert> & Pick<ActiveAlert, 'id' | 'kind' | 'severity' | 'message'>): ActiveAlert => ({
    client: x.id.includes(':') ? x.id.split(':')[1] : null, first_seen: '2026-12-07T11:00:00Z', age_seconds: 3600,
    acked: false, muted_until: null, cleared_at: null, ...x,
  });
  return [
    a({ id: 'tracker_unreachable:gone', kind: 'tracker_unreachable', severity: 'critical', first_seen: '2026-12-07T11:58:00Z', age_seconds: 90,
      message: 'tracker unreachable for 3 refreshes in a row (tracker http://10.0.0.9:8080 is unreachable: connection refused); check its container (maictl logs gone --role tracker) and the network to hel2' }),
    a({ id: 'key_limit:acme', kind: 'key_limit', severity: 'critical', first_seen: '2026-12-07T09:30:00Z', age_seconds: 9000,
      message: 'OpenRouter refuses this client\'s key: its spending cap is reached (403 "Key limit exceeded"); raise monthly_limit_usd (the key\'s cap follows it) or the key\'s limit on openrouter.ai' }),
    a({ id: 'limit_warning:tiny', kind: 'limit_warning', severity: 'warning', first_seen: '2026-12-06T18:00:00Z', age_seconds: 64800, acked: true,
      message: '85.00% of the monthly limit used ($85.00 of $100); tell the client or raise monthly_limit_usd (maictl clients set tiny --monthly-limit ...) before requests stop' }),
    a({ id: 'nbp_stale', kind: 'nbp_stale', severity: 'warning', first_seen: '2026-12-07T08:00:00Z', age_seconds: 14400, muted_until: '2099-01-01T00:00:00Z',
      message: 'the NBP USD→PLN rate is stale (table of 2026-12-04, NBP not answering now); PLN figures use it; check [nbp] base_url and the network' }),
  ];
}

function view(active: ActiveAlert[], cleared: ActiveAlert[]): AlertsView {
  const now = new Date();
  const attention = active.filter((a) => !a.acked && !(a.muted_until && new Date(a.muted_until) > now));
  const byClient: Record<string, number> = {};
  for (const a of attention) if (a.client) byClient[a.client] = (byClient[a.client] ?? 0) + 1;
  return { active, cleared, attention_by_client: byClient, attention: attention.length, evaluated_at: EVALUATED };
}

export function alertsMock(scenario: string) {
  // `alerts-cleared-meanwhile`: the view shows them, but the Rust side no longer has them.
  const shown = scenario.startsWith('alerts');
  const active = shown ? several() : [];
  const cleared: ActiveAlert[] = shown
    ? [{ id: 'chat_container:acme', kind: 'chat_container', severity: 'critical', client: 'acme',
        message: 'chat container mai-acme-chat is exited; read its logs', first_seen: '2026-12-07T10:00:00Z', age_seconds: 600,
        acked: false, muted_until: null, cleared_at: '2026-12-07T10:10:00Z' }]
    : [];
  const find = (id: string) => {
    const a = scenario === 'alerts-cleared-meanwhile' ? undefined : active.find((x) => x.id === id);
    if (!a) throw `alerts: no active alert "${id}"; list them with \`maictl alerts\` (ids look like tracker_unreachable:acme)`;
    return a;
  };
  return async (cmd: string, args: unknown): Promise<AlertsView | undefined> => {
    switch (cmd) {
      case 'alerts_list':
        return view(active, cleared);
      case 'alert_ack':
        find((args as { id: string }).id).acked = true;
        return view(active, cleared);
      case 'alert_mute': {
        const r = (args as { request: MuteRequest }).request;
        find(r.id).muted_until = new Date(Date.now() + r.seconds * 1000).toISOString();
        return view(active, cleared);
      }
      default:
        return undefined;
    }
  };
}
