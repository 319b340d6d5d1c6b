// Words for the Alerts view and the nav badge; the alerts themselves come from mai-ops.
import type { ActiveAlert, AlertKind } from './wire';

const KIND_LABELS: Record<AlertKind, string> = {
  limit_warning: 'Monthly limit: warning',
  limit_reached: 'Monthly limit reached',
  key_limit: 'OpenRouter key cap',
  tracker_unreachable: 'Tracker unreachable',
  chat_container: 'Chat container',
  tracker_container: 'Tracker container',
  drift: 'Drift vs OpenRouter',
  reconciliation: 'Reconciliation failed',
  nbp_stale: 'NBP rate stale',
  ksef_rejected: 'KSeF rejection',
};

export function kindLabel(k: AlertKind): string {
  return KIND_LABELS[k] ?? k;
}

/** Mute periods offered in the view, in seconds. */
export const MUTE_PERIODS: { label: string; seconds: number }[] = [
  { label: '1 hour', seconds: 3600 },
  { label: '8 hours', seconds: 8 * 3600 },
  { label: '1 day', seconds: 86400 },
  { label: '7 days', seconds: 7 * 86400 },
];

/** "new", "acknowledged", or "muted until 2026-12-07 14:00 UTC" at `now`. */
export function alertState(a: ActiveAlert, now: Date): string {
  if (a.muted_until && new Date(a.muted_until) > now) return `muted until ${utc(a.muted_until)}`;
  return a.acked ? 'acknowledged' : 'new';
}

/** An RFC 3339 instant as "2026-12-07 14:00 UTC". */
export function utc(instant: string): string {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime())) return instant;
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}
