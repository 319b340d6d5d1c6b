// Page tests of the Alerts view (issue 14): none, several (worst first, client, kind,
// first seen, age, state), acknowledging, muting, the nav badge, a narrow window.
// Run by run.mjs with its browser, helpers and output folder.
import assert from 'node:assert/strict';
import { join } from 'node:path';

export default async function alertsTests({ test, base, out, text }) {
  await test('alerts: none active, no badge', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-alerts').click();
    await page.getByTestId('alerts-empty').waitFor();
    assert.match(await text(page, '[data-testid="alerts-empty"]'), /No active alerts\.\s+The fleet was last checked 2026-12-07 11:59 UTC/);
    assert.equal(await page.getByTestId('alerts-badge').count(), 0);
    assert.equal(await page.getByTestId('alerts-table').count(), 0);
    await page.screenshot({ path: join(out, 'alerts-empty.png'), fullPage: true });
  });

  await test('alerts: several, worst first, with client, kind, first seen, age and state', async (page) => {
    await page.goto(base + '?scenario=alerts');
    // Acknowledged and muted ones need no attention: 2 of 4.
    await page.getByTestId('alerts-badge').waitFor();
    assert.equal(await text(page, '[data-testid="alerts-badge"]'), '2');
    await page.getByTestId('nav-alerts').click();
    await page.getByTestId('alerts-table').waitFor();
    const ids = await page.locator('[data-testid="alerts-table"] tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.testid));
    assert.deepEqual(ids, ['alert-tracker_unreachable:gone', 'alert-key_limit:acme', 'alert-limit_warning:tiny', 'alert-nbp_stale']);
    const row = '[data-testid="alert-tracker_unreachable:gone"]';
    assert.equal(await text(page, `${row} [data-testid="alert-client"]`), 'gone');
    assert.equal(await text(page, `${row} [data-testid="alert-kind"]`), 'Tracker unreachable');
    assert.equal(await text(page, `${row} [data-testid="alert-first-seen"]`), '2026-12-07 11:58 UTC');
    assert.equal(await text(page, `${row} [data-testid="alert-age"]`), '1m');
    assert.equal(await text(page, `${row} [data-testid="alert-state"]`), 'new');
    assert.match(await text(page, `${row} [data-testid="alert-message"]`), /3 refreshes in a row.*maictl logs gone --role tracker/);
    assert.equal(await text(page, '[data-testid="alert-limit_warning:tiny"] [data-testid="alert-state"]'), 'acknowledged');
    assert.equal(await text(page, '[data-testid="alert-limit_warning:tiny"] [data-testid="alert-age"]'), '18h 0m');
    assert.equal(await text(page, '[data-testid="alert-nbp_stale"] [data-testid="alert-client"]'), 'whole fleet');
    assert.match(await text(page, '[data-testid="alert-nbp_stale"] [data-testid="alert-state"]'), /^muted until 2099-01-01 00:00 UTC$/);
    // An acknowledged alert offers no second acknowledgement.
    assert.equal(await page.locator('[data-testid="alert-limit_warning:tiny"] [data-testid="alert-ack"]').count(), 0);
    assert.match(await text(page, '[data-testid="alerts-summary"]'), /4 active, 2 need attention/);
    assert.match(await text(page, '[data-testid="cleared-chat_container:acme"]'), /Chat container.*2026-12-07 10:10 UTC/s);
    await page.screenshot({ path: join(out, 'alerts-several.png'), fullPage: true });
  });

  await test('alerts: acknowledge, then mute for a period; the badge follows', async (page) => {
    await page.goto(base + '?scenario=alerts');
    await page.getByTestId('nav-alerts').click();
    const row = '[data-testid="alert-key_limit:acme"]';
    await page.locator(`${row} [data-testid="alert-ack"]`).click();
    await page.locator(`${row} [data-testid="alert-state"]`).filter({ hasText: 'acknowledged' }).waitFor();
    assert.equal(await text(page, '[data-testid="alerts-badge"]'), '1');
    await page.screenshot({ path: join(out, 'alerts-acked.png'), fullPage: true });
    const gone = '[data-testid="alert-tracker_unreachable:gone"]';
    await page.locator(`${gone} [data-testid="alert-mute-period"]`).selectOption({ label: '8 hours' });
    await page.locator(`${gone} [data-testid="alert-mute"]`).click();
    await page.locator(`${gone} [data-testid="alert-state"]`).filter({ hasText: /^muted until / }).waitFor();
    assert.equal(await page.getByTestId('alerts-badge').count(), 0, 'nothing needs attention any more');
    const calls = await page.evaluate(() => window.__calls.filter((c) => c.cmd.startsWith('alert_')));
    assert.deepEqual(calls, [
      { cmd: 'alert_ack', args: { id: 'key_limit:acme' } },
      { cmd: 'alert_mute', args: { request: { id: 'tracker_unreachable:gone', seconds: 28800 } } },
    ]);
    await page.screenshot({ path: join(out, 'alerts-muted.png'), fullPage: true });
    // Check now refreshes the fleet (which evaluates the alerts) and reloads them.
    await page.getByTestId('alerts-check').click();
    await page.getByTestId('alerts-check').filter({ hasText: 'Check now' }).waitFor();
    const after = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    const i = after.lastIndexOf('fleet_status');
    assert.ok(i >= 0 && after.indexOf('alerts_list', i) > i, 'fleet_status then alerts_list');
  });

  await test('alerts: an alert that cleared meanwhile is a clear error', async (page) => {
    await page.goto(base + '?scenario=alerts-cleared-meanwhile');
    await page.getByTestId('nav-alerts').click();
    await page.locator('[data-testid="alert-key_limit:acme"] [data-testid="alert-ack"]').click();
    await page.getByTestId('alerts-error').waitFor();
    assert.match(await text(page, '[data-testid="alerts-error"]'), /no active alert "key_limit:acme"; list them with `maictl alerts`/);
    await page.screenshot({ path: join(out, 'alerts-error.png'), fullPage: true });
  });

  await test('alerts: narrow window, each alert a card', async (page) => {
    await page.goto(base + '?scenario=alerts');
    await page.getByTestId('nav-alerts').click();
    await page.getByTestId('alerts-table').waitFor();
    assert.equal(await page.locator('[data-testid="alerts-table"] thead').isVisible(), false);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 420, `no horizontal scroll in a narrow window (${width}px)`);
    await page.screenshot({ path: join(out, 'alerts-narrow.png'), fullPage: true });
  }, { width: 420, height: 900 });
}
