import { describe, expect, it } from 'vitest';
import { alertState, kindLabel, utc } from '../../src/lib/alerts';
import type { ActiveAlert } from '../../src/lib/wire';

const base: ActiveAlert = {
  id: 'key_limit:acme', kind: 'key_limit', severity: 'critical', client: 'acme', message: 'cap reached',
  first_seen: '2026-12-07T10:00:00Z', age_seconds: 60, acked: false, muted_until: null, cleared_at: null,
};

describe('alerts', () => {
  it('names kinds for people', () => {
    expect(kindLabel('tracker_unreachable')).toBe('Tracker unreachable');
    expect(kindLabel('nbp_stale')).toBe('NBP rate stale');
  });
  it('says new, acknowledged, or muted until when', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    expect(alertState(base, now)).toBe('new');
    expect(alertState({ ...base, acked: true }, now)).toBe('acknowledged');
    expect(alertState({ ...base, muted_until: '2026-12-07T14:00:00Z' }, now)).toBe('muted until 2026-12-07 14:00 UTC');
    // An expired mute is no mute.
    expect(alertState({ ...base, muted_until: '2026-12-07T11:00:00Z' }, now)).toBe('new');
  });
  it('formats instants in UTC', () => {
    expect(utc('2026-12-07T09:05:59Z')).toBe('2026-12-07 09:05 UTC');
  });
});
