// How the Billing view shows an invoice's KSeF state. The shapes are mai-wire's
// (crates/mai-wire/src/ksef.rs); only the words for people live here.
import { formatFixed, parseDec } from './decimal';
import type { KsefInvoiceRow, KsefSendPhase, KsefSendProgress } from './wire';

export type KsefBadge = 'not_issued' | 'prepared' | 'sent' | 'accepted' | 'rejected' | 'failed';

/** The row's badge: its state, or `failed` when a send of it stopped before KSeF decided
 * (the same rule as `KsefInvoiceRow::failed` in mai-wire, which maictl prints). */
export function ksefBadge(r: KsefInvoiceRow): KsefBadge {
  if (r.error && (r.state.kind === 'prepared' || r.state.kind === 'sent')) return 'failed';
  return r.state.kind;
}

export const badgeText: Record<KsefBadge, string> = {
  not_issued: 'not issued',
  prepared: 'ready to send',
  sent: 'sent · KSeF processing',
  accepted: 'accepted',
  rejected: 'rejected',
  failed: 'send failed',
};

/** The CSS class of the badge's colour. */
export const badgeClass: Record<KsefBadge, string> = {
  not_issued: 'muted',
  prepared: 'muted',
  sent: 'info',
  accepted: 'ok',
  rejected: 'crit',
  failed: 'crit',
};

const phaseText: Record<KsefSendPhase, string> = {
  connecting: 'Connecting to KSeF (token, session)…',
  sending: 'Sending',
  processing: "Waiting for KSeF's verdict",
  receipts: 'Downloading receipts (UPO)',
  done: 'Done',
};

/** "Sending FV/2026/10/0002" */
export function progressText(p: KsefSendProgress): string {
  return p.current ? `${phaseText[p.phase]} ${p.current}` : phaseText[p.phase];
}

/** An invoice amount as on the invoice: "1 584,18 PLN" (exact, from the decimal string). */
export function invoiceAmount(gross: string, currency: string): string {
  const d = parseDec(gross);
  return d ? `${formatFixed(d, 2, '\u00a0', ',')}\u00a0${currency}` : '—';
}

/** An instant to the minute in UTC, as maictl prints it: "2026-11-03 09:15 UTC". */
export function utcMinute(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}
