import { describe, expect, it } from 'vitest';
import { age, int, localDateTime, localTime, margin, percent, plnAmount, share, taskLabel, usd, usdPln } from '../../src/lib/format';
import type { PlnRate } from '../../src/lib/wire';
import { parseDec, round, formatFixed } from '../../src/lib/decimal';

const rate = (r: string): PlnRate => ({ available: true, rate: r, table_no: '226/C/NBP/2026', effective_date: '2026-11-23', stale: false, error: null, pending: false });

describe('usd', () => {
  it('uses 2 decimals from one cent and thousands separators', () => {
    expect(usd('12.5')).toBe('$12.50');
    expect(usd('1234567.891')).toBe('$1,234,567.89');
    expect(usd('0.01')).toBe('$0.01');
    expect(usd('0')).toBe('$0.00');
  });
  it('uses 6 decimals under one cent, exactly (no float)', () => {
    expect(usd('0.000863525')).toBe('$0.000864');
    expect(usd('4.25e-6')).toBe('$0.000004');
    expect(usd('0.0099999995')).toBe('$0.010000');
  });
  it('rounds half up like the ledger', () => {
    expect(usd('2.675')).toBe('$2.68'); // 2.675 as a float would print 2.67
    expect(usd('-1.005')).toBe('-$1.01');
  });
  it('shows a dash for missing values', () => {
    expect(usd(null)).toBe('—');
    expect(usd('abc')).toBe('—');
  });
});

describe('usdPln', () => {
  it('puts PLN beside USD with Polish formatting', () => {
    expect(usdPln('12.50', rate('4.0000'))).toBe('$12.50 (50,00\u00a0zł)');
    expect(usdPln('1000', rate('4.1234'))).toBe('$1,000.00 (4\u00a0123,40\u00a0zł)');
    expect(usdPln('0.001', rate('4'))).toBe('$0.001000 (0,004000\u00a0zł)');
  });
  it('falls back to USD only when the rate is unavailable', () => {
    expect(usdPln('12.50', { ...rate('4'), available: false, rate: null })).toBe('$12.50');
    expect(usdPln('12.50', null)).toBe('$12.50');
  });
});

describe('plnAmount', () => {
  it('follows the same rule in PLN, with Polish grouping and a comma', () => {
    expect(plnAmount('1287.95')).toBe('1\u00a0287,95\u00a0zł');
    expect(plnAmount('54.49')).toBe('54,49\u00a0zł');
    expect(plnAmount('0.00')).toBe('0,00\u00a0zł');
    expect(plnAmount('0.0034535')).toBe('0,003454\u00a0zł');
    expect(plnAmount('-12.345')).toBe('-12,35\u00a0zł');
    expect(plnAmount(null)).toBe('—');
  });
});

describe('helpers', () => {
  it('int, age, percent', () => {
    expect(int(1234567)).toBe('1,234,567');
    expect(int(null)).toBe('—');
    expect(age(59)).toBe('59s');
    expect(age(3720)).toBe('1h 2m');
    expect(percent('80.456')).toBe('80.5%');
  });
  it('decimal parse/round/format', () => {
    expect(formatFixed(round(parseDec('1E-9')!, 9), 9, ',', '.')).toBe('0.000000001');
    expect(parseDec('')).toBeNull();
  });
});

describe('share', () => {
  it('turns an exact fraction into a percentage with one decimal', () => {
    expect(share('0.25')).toBe('25.0%');
    expect(share('0.1234')).toBe('12.3%');
    expect(share('0.00005')).toBe('0.0%');
    expect(share('1')).toBe('100.0%');
    expect(share(null)).toBe('—');
  });
});

describe('taskLabel', () => {
  it("names the users' own messages and the unknown row, keeps task names", () => {
    expect(taskLabel('chat')).toBe("Users' own messages");
    expect(taskLabel('(unknown)')).toMatch(/X-Mai-Task/);
    expect(taskLabel('title_generation')).toBe('title_generation');
  });
});

describe('margin', () => {
  it('shows the report\'s margin with its two decimals, exactly', () => {
    expect(margin('23.08')).toBe('23.08%');
    expect(margin('18.8')).toBe('18.80%');
    expect(margin('-4.5')).toBe('-4.50%');
    expect(margin('0')).toBe('0.00%');
    expect(margin(null)).toBe('—');
  });
});

describe('local times', () => {
  it('write what toLocaleTimeString / toLocaleString write, from one formatter each', () => {
    for (const iso of ['2026-12-07T06:53:08Z', '2026-03-29T00:59:59.999Z', '2026-10-25T01:30:00Z']) {
      const d = new Date(iso);
      expect(localTime(iso)).toBe(d.toLocaleTimeString());
      expect(localTime(d)).toBe(d.toLocaleTimeString());
      expect(localDateTime(iso)).toBe(d.toLocaleString());
    }
  });
});
