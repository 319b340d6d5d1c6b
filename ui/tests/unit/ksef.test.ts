import { describe, expect, it } from 'vitest';
import { invoiceAmount, ksefBadge, progressText, utcMinute } from '../../src/lib/ksef';
import type { KsefInvoiceRow, KsefState } from '../../src/lib/wire';

const row = (state: KsefState, error: string | null = null): KsefInvoiceRow => ({
  org_id: 'acme', client_name: 'ACME Sp. z o.o.', number: 'FV/2026/10/0001', kind: 'VAT', corrects_ksef_number: null,
  corrects_number: null, state, ksef_number: null, acquisition_date: null, rejection: null, error, gross: '1584.18',
  currency: 'PLN', upo_available: false,
});

describe('ksefBadge', () => {
  it('is the state, or failed when a send stopped before KSeF decided', () => {
    expect(ksefBadge(row({ kind: 'accepted' }))).toBe('accepted');
    expect(ksefBadge(row({ kind: 'prepared' }))).toBe('prepared');
    expect(ksefBadge(row({ kind: 'prepared' }, 'KSeF did not answer'))).toBe('failed');
    expect(ksefBadge(row({ kind: 'sent' }, 'status not read'))).toBe('failed');
    expect(ksefBadge(row({ kind: 'rejected' }, 'x'))).toBe('rejected');
    expect(ksefBadge(row({ kind: 'not_issued', reason: 'no usage' }))).toBe('not_issued');
  });
});

describe('KSeF texts', () => {
  it('formats amounts exactly, Polish style, with the currency', () => {
    expect(invoiceAmount('1584.18', 'PLN')).toBe('1\u00a0584,18\u00a0PLN');
    expect(invoiceAmount('-123', 'PLN')).toBe('-123,00\u00a0PLN');
    expect(invoiceAmount('0.005', 'USD')).toBe('0,01\u00a0USD');
  });
  it('says what a send is doing', () => {
    expect(progressText({ done: 1, total: 3, current: 'FV/2026/10/0002', phase: 'sending' })).toBe('Sending FV/2026/10/0002');
    expect(progressText({ done: 0, total: 3, current: null, phase: 'connecting' })).toMatch(/^Connecting to KSeF/);
  });
  it('shows the moment KSeF took an invoice in UTC', () => {
    expect(utcMinute('2026-11-03T09:15:42Z')).toBe('2026-11-03 09:15 UTC');
    expect(utcMinute(null)).toBe('');
  });
});
