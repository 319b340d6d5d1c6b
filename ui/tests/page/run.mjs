// Page tests of the built UI in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core), with Tauri's mockIPC standing in for the Rust side.
// Screenshots go to ../test-output/ui/. Exit code 1 on any failure.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { lifecycleTests } from './lifecycle.mjs';
import { launchChromium, serveHarness } from './serve.mjs';

const out = resolve(import.meta.dirname, '../../../test-output/ui');
await mkdir(out, { recursive: true });
const server = await serveHarness();
const base = server.base;
const browser = await launchChromium();

const results = [];
async function test(name, fn, viewport = { width: 1280, height: 800 }, options = {}) {
  const page = await browser.newPage({ viewport, ...options });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await fn(page);
    assert.deepEqual(errors, [], 'page errors');
    results.push([name, null]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL ${name}\n     ${String(e?.message ?? e).split('\n').join('\n     ')}`);
    await page.screenshot({ path: join(out, `FAILED-${name.replace(/\W+/g, '-')}.png`) }).catch(() => {});
  } finally {
    await page.close();
  }
}
const text = (page, sel) => page.locator(sel).first().innerText();

await test('fleet table: rows, exact costs, unreachable tracker with data age', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  assert.equal(await page.locator('[data-testid^="row-"]').count(), 3);
  assert.equal(await text(page, '[data-testid="row-acme"] [data-testid="today-cost"]'), '$12.50');
  assert.equal(await text(page, '[data-testid="row-tiny"] [data-testid="today-cost"]'), '$0.000864');
  const gone = await text(page, '[data-testid="row-gone"] [data-testid="tracker-state"]');
  assert.match(gone, /unreachable/);
  assert.match(gone, /data 30m old/);
  assert.match(await text(page, '[data-testid="row-acme"]'), /1,234,567/);
  // A client on a Docker Swarm host is marked; one on a plain host is not.
  assert.equal(await text(page, '[data-testid="row-tiny"] [data-testid="swarm-badge"]'), 'swarm');
  assert.equal(await page.locator('[data-testid="row-acme"] [data-testid="swarm-badge"]').count(), 0);
  assert.match(await text(page, '[data-testid="last-updated"]'), /Last updated: \d/);
  await page.screenshot({ path: join(out, 'fleet.png'), fullPage: true });
});

await test('sync all: progress events and a per-client result', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  await page.getByTestId('sync-all').click();
  await page.getByTestId('message').filter({ hasText: 'Sync finished' }).waitFor();
  assert.match(await text(page, '[data-testid="message"]'), /1 of 3 failed/);
  assert.match(await text(page, '[data-testid="row-gone"] [data-testid="sync-result"]'), /unreachable/);
  assert.match(await text(page, '[data-testid="row-acme"] [data-testid="sync-result"]'), /sync: ok/);
  const calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
  assert.ok(calls.includes('sync_clients'));
  await page.screenshot({ path: join(out, 'fleet-after-sync.png'), fullPage: true });
});

await test('client dashboard: cards in USD and PLN, chart, tabs by keyboard', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  await page.locator('[data-testid="row-acme"] button', { hasText: 'Open' }).click();
  await page.getByTestId('card-today-cost').waitFor();
  assert.equal(await text(page, '[data-testid="card-today-cost"]'), '$12.50 (50,00\u00a0zł)');
  assert.equal(await text(page, '[data-testid="card-tokens"]'), '1,234,567');
  assert.match(await text(page, '[data-testid="pln-rate"]'), /226\/C\/NBP\/2026/);
  assert.match(await text(page, '[data-testid="live-indicator"]'), /Live/);
  await page.locator('[data-testid="trend-chart"] canvas').waitFor();
  await page.screenshot({ path: join(out, 'client-trend.png'), fullPage: true });
  await page.locator('#tab-trend').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-users');
  assert.match(await text(page, '[data-testid="table-users"]'), /Anna Nowak/);
  assert.match(await text(page, '[data-testid="table-users"]'), /\$0\.000130 \(0,000520\u00a0zł\)/);
  await page.screenshot({ path: join(out, 'client-by-user.png'), fullPage: true });
  await page.keyboard.press('ArrowRight');
  assert.match(await text(page, '[data-testid="table-models"]'), /openai\/gpt-4o-mini/);
  await page.screenshot({ path: join(out, 'client-by-model.png'), fullPage: true });
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-tasks');
  assert.match(await text(page, '[data-testid="background-share"]'), /25\.0%/);
  assert.match(await text(page, '[data-testid="table-tasks"]'), /Users' own messages/);
  assert.match(await text(page, '[data-testid="table-tasks"]'), /title_generation/);
  await page.screenshot({ path: join(out, 'client-by-task.png'), fullPage: true });
  await page.keyboard.press('ArrowRight');
  assert.match(await text(page, '[data-testid="table-groups"]'), /Księgowość, Zarząd/);
  await page.screenshot({ path: join(out, 'client-by-group.png'), fullPage: true });
  await page.keyboard.press('ArrowRight');
  assert.match(await text(page, '[data-testid="chat-count"]'), /1 most expensive of 57 chats/);
  assert.match(await text(page, '[data-testid="table-chats"]'), /6c1f0a2e-1b7a-4d0e-9d0e-0f6a3b2c1d00/);
  await page.screenshot({ path: join(out, 'client-top-chats.png'), fullPage: true });
});

await test('client by user: export and erase one person, with a confirmation dialog', async (page) => {
  await page.goto(base);
  await page.getByTestId('nav-client').click();
  await page.locator('#tab-users').click();
  await page.getByTestId('table-users').waitFor();
  // The unknown user has no personal data to act on.
  assert.equal(await page.locator('[data-testid="table-users"] [data-testid^="erase-"]').count(), 1);
  await page.getByTestId('export-u1').click();
  assert.ok(await page.getByTestId('privacy-dialog').evaluate((d) => d.open));
  assert.equal(await page.getByTestId('privacy-user-id').inputValue(), 'u1');
  await page.getByTestId('privacy-email').fill('anna@acme.pl');
  await page.getByTestId('privacy-confirm').click();
  await page.getByTestId('privacy-export-result').waitFor();
  assert.match(await text(page, '[data-testid="privacy-export-result"]'), /1 requests, \$0\.000660/);
  assert.match(await page.getByTestId('privacy-download').getAttribute('href'), /^blob:/);
  await page.screenshot({ path: join(out, 'client-privacy-export.png'), fullPage: true });
  await page.getByTestId('privacy-close').click();
  assert.ok(!(await page.getByTestId('privacy-dialog').evaluate((d) => d.open)));

  // Erase: the dialog warns, Cancel does nothing, Erase calls the command.
  await page.getByTestId('erase-u1').click();
  assert.match(await text(page, '[data-testid="privacy-dialog"]'), /cannot be undone/);
  await page.getByTestId('privacy-close').click();
  let calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
  assert.ok(!calls.includes('privacy_erase'), 'cancel erases nothing');
  await page.getByTestId('erase-u1').click();
  await page.getByTestId('privacy-user-id').fill('');
  await page.getByTestId('privacy-confirm').click();
  assert.match(await text(page, '[data-testid="privacy-error"]'), /user id or the e-mail/);
  await page.getByTestId('privacy-user-id').fill('u1');
  await page.screenshot({ path: join(out, 'client-privacy-erase-confirm.png'), fullPage: true });
  await page.getByTestId('privacy-confirm').click();
  await page.getByTestId('privacy-erase-result').waitFor();
  assert.match(await text(page, '[data-testid="privacy-erase-result"]'), /600 requests on the tracker.*erased-9f86/s);
  calls = await page.evaluate(() => window.__calls);
  const erase = calls.filter((c) => c.cmd === 'privacy_erase');
  assert.deepEqual(erase.map((c) => c.args), [{ clientId: 'acme', userId: 'u1', email: null }]);
  const idx = calls.findIndex((c) => c.cmd === 'privacy_erase');
  assert.ok(calls.slice(idx + 1).some((c) => c.cmd === 'client_dashboard'), 'the dashboard is reloaded');
  await page.screenshot({ path: join(out, 'client-privacy-erased.png'), fullPage: true });
});

await test('client dashboard: visible warning when PLN is unavailable', async (page) => {
  await page.goto(base + '?scenario=no-pln');
  await page.getByTestId('nav-client').click();
  await page.getByTestId('pln-warning').waitFor();
  assert.match(await text(page, '[data-testid="pln-warning"]'), /PLN amounts unavailable: NBP did not answer/);
  assert.equal(await text(page, '[data-testid="card-today-cost"]'), '$12.50');
  await page.screenshot({ path: join(out, 'client-no-pln.png'), fullPage: true });
});

await test('keys: set a key, only the mask comes back, the input is cleared', async (page) => {
  await page.goto(base);
  await page.getByTestId('nav-keys').click();
  await page.getByTestId('keys-table').waitFor();
  await page.getByTestId('key-client').selectOption('tiny');
  await page.getByTestId('key-secret').fill('sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab9f3e');
  await page.getByTestId('key-save').click();
  await page.getByTestId('keys-message').waitFor();
  assert.match(await text(page, '[data-testid="keys-message"]'), /sk-or-v1-…9f3e/);
  assert.equal(await page.getByTestId('key-secret').inputValue(), '');
  const html = await page.content();
  assert.ok(!html.includes('0123456789abcdef0123'), 'the plaintext key must not stay in the page');
  assert.match(await text(page, '[data-testid="key-tiny-open-router"]'), /sk-or-v1-…9f3e/);
  await page.screenshot({ path: join(out, 'keys.png'), fullPage: true });
});

await test('keychain unavailable: a clear banner', async (page) => {
  await page.goto(base + '?scenario=no-keychain');
  await page.getByTestId('keychain-warning').waitFor();
  assert.match(await text(page, '[data-testid="keychain-warning"]'), /no key is ever stored in plain text/);
});

await test('settings: check for updates gives a clear result', async (page) => {
  await page.goto(base);
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('check-updates').click();
  await page.getByTestId('update-result').waitFor();
  assert.match(await text(page, '[data-testid="update-result"]'), /Version 0\.2\.0 is available \(you have 0\.1\.0\)/);
  await page.screenshot({ path: join(out, 'settings.png'), fullPage: true });
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-placeholder').waitFor();
  await page.screenshot({ path: join(out, 'billing.png'), fullPage: true });
});

await test('billing: month report from mai-billing with PLN totals', async (page) => {
  await page.goto(base + '?scenario=billing');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  const t = await text(page, '[data-testid="billing-table"]');
  assert.match(t, /FV\/2026\/10\/001/);
  assert.match(t, /\$247\.68/);
  assert.match(t, /\$0\.000660/);
  assert.equal(await text(page, '[data-testid="billing-pln"]'), '1\u00a0287,95\u00a0zł / 296,23\u00a0zł / 1\u00a0584,18\u00a0zł');
  await page.screenshot({ path: join(out, 'billing-report.png'), fullPage: true });
});

await test('billing: fees, profit after fees and the margin before and after them', async (page) => {
  await page.goto(base + '?scenario=billing');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  const nb = (s) => s.replace(/\u00a0/g, ' ');
  // Per client: fees in PLN (USD exact in the tooltip), profit after fees with the one
  // before under it, the margin after fees with the one before under it.
  const acme = '[data-testid="billing-row-acme"]';
  assert.equal(nb(await text(page, `${acme} [data-testid="fees"]`)), '54,49 zł');
  assert.equal(await page.locator(`${acme} [data-testid="fees"]`).getAttribute('title'), '$13.62 at the invoice rate');
  assert.equal(nb(await text(page, `${acme} [data-testid="profit-after-fees"]`)), '242,73 zł\n297,22 zł before');
  assert.equal(await text(page, `${acme} [data-testid="margin"]`), '18.85%\n23.08% before fees');
  assert.match(await page.locator(`${acme} [data-testid="margin"]`).getAttribute('title'), /1\.3× is 23\.08% before fees, not 30%/);
  // The fleet's totals, in the table's footer and in the summary.
  const total = '[data-testid="billing-total"]';
  assert.equal(nb(await text(page, `${total} [data-testid="fees"]`)), '54,49 zł');
  assert.equal(nb(await text(page, `${total} [data-testid="profit-after-fees"]`)), '242,73 zł\n297,22 zł before');
  assert.equal(await text(page, `${total} [data-testid="margin"]`), '18.85%\n23.08% before fees');
  assert.equal(nb(await text(page, '[data-testid="billing-fees"]')), '54,49 zł ($13.62)');
  assert.equal(nb(await text(page, '[data-testid="billing-profit-after-fees"]')), '242,73 zł');
  assert.match(await text(page, '[data-testid="billing-margin"]'), /^18\.85% after fees, 23\.08% before\n.*not 30%/);
  assert.match(await text(page, '[data-testid="billing-fees-basis"]'), /^Credit-purchase fee 5\.5% of credits used: top-up sizes unknown/);
  // A month whose amounts round to 0.00 is not invoiced, and says so; no margin of a zero net.
  const tiny = '[data-testid="billing-row-tiny"]';
  assert.equal(await text(page, `${tiny} [data-testid="zero-amounts"]`), 'not invoiced: amounts round to 0.00');
  assert.equal(await text(page, `${tiny} [data-testid="margin"]`), '—');
  // Deadline shown; no warning while nothing is left to issue.
  assert.match(await text(page, '[data-testid="billing-deadline"]'), /Invoices for 2026-10 must be issued by 2026-11-15/);
  assert.equal(await page.getByTestId('billing-deadline-warning').count(), 0);
  await page.screenshot({ path: join(out, 'billing-fees.png'), fullPage: true });
});

await test('billing: a missed invoice deadline is a red banner naming the clients', async (page) => {
  await page.goto(base + '?scenario=billing-deadline');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  const w = page.getByTestId('billing-deadline-warning');
  assert.equal(await w.getAttribute('role'), 'alert');
  assert.match(await w.getAttribute('class'), /\bcrit\b/);
  assert.match(await w.innerText(), /^Invoices for 2026-10 are late: the deadline was 2026-11-15 .* still to issue: kowalski\. Issue them now\.$/);
  assert.match(await text(page, '[data-testid="billing-row-kowalski"]'), /ready to issue/);
  assert.equal(await text(page, '[data-testid="billing-total"] [data-testid="margin"]'), '18.85%\n23.08% before fees');
  assert.equal(await text(page, '[data-testid="billing-fees"]'), '81,00\u00a0zł ($20.25)');
  await page.screenshot({ path: join(out, 'billing-deadline.png'), fullPage: true });
});

await test('billing export: progress while running, then per-client results', async (page) => {
  await page.goto(base + '?scenario=billing');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  await page.getByTestId('billing-month').fill('2026-10');
  assert.equal(await page.getByTestId('export-format').inputValue(), 'pdf');
  await page.getByTestId('export-run').click();
  // The mock holds the export after the first file: the bar shows 1 of 2.
  await page.getByTestId('export-progress').filter({ hasText: '1/2' }).waitFor();
  assert.match(await text(page, '[data-testid="export-progress"]'), /Wrote \/home\/anna\/mai-invoices\/2026-10\/FV_2026_10_0002\.pdf/);
  assert.equal(await page.locator('[data-testid="export-progress"] progress').getAttribute('max'), '2');
  assert.ok(await page.getByTestId('export-run').isDisabled());
  await page.screenshot({ path: join(out, 'billing-export-progress.png'), fullPage: true });
  await page.waitForFunction(() => typeof window.__releaseExport === 'function');
  await page.evaluate(() => window.__releaseExport());
  await page.getByTestId('export-results').waitFor();
  assert.equal(await page.getByTestId('export-progress').count(), 0);
  assert.match(await text(page, '[data-testid="export-summary"]'), /2 files in \/home\/anna\/mai-invoices\/2026-10/);
  assert.match(await text(page, '[data-testid="export-acme"]'), /FV\/2026\/10\/0002 \(issued now\)[\s\S]*FV_2026_10_0002\.pdf/);
  assert.match(await text(page, '[data-testid="export-kowalski"]'), /FV\/2026\/10\/0003/);
  assert.doesNotMatch(await text(page, '[data-testid="export-kowalski"]'), /issued now/);
  assert.match(await text(page, '[data-testid="export-tiny"]'), /not exported: missing invoice data: NIP/);
  const calls = await page.evaluate(() => window.__calls);
  const exp = calls.filter((c) => c.cmd === 'billing_export');
  assert.equal(exp.length, 1);
  assert.deepEqual(exp[0].args.request, { month: '2026-10', format: 'pdf', client: null, out_dir: null, dialect: 'polish' });
  // The report is reloaded after the export, to show the new invoice numbers.
  const idx = calls.findIndex((c) => c.cmd === 'billing_export');
  assert.ok(calls.slice(idx + 1).some((c) => c.cmd === 'billing_report'));
  await page.screenshot({ path: join(out, 'billing-export-done.png'), fullPage: true });
});

await test('billing export: NBP down is a clear error naming the table and dates', async (page) => {
  await page.goto(base + '?scenario=billing-nbp-down');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  await page.getByTestId('billing-month').fill('2026-10');
  await page.getByTestId('export-format').selectOption('ksef');
  await page.getByTestId('export-client').selectOption('acme');
  await page.getByTestId('export-dir').fill('/srv/faktury');
  await page.getByTestId('export-run').click();
  await page.getByTestId('export-error').waitFor();
  const err = await text(page, '[data-testid="export-error"]');
  assert.match(err, /Export failed: NBP unreachable: could not get table A USD/);
  assert.match(err, /2026-10-31/);
  assert.equal(await page.getByTestId('export-results').count(), 0);
  assert.equal(await page.getByTestId('export-progress').count(), 0);
  assert.ok(!(await page.getByTestId('export-run').isDisabled()));
  const req = (await page.evaluate(() => window.__calls)).find((c) => c.cmd === 'billing_export').args.request;
  assert.deepEqual(req, { month: '2026-10', format: 'ksef', client: 'acme', out_dir: '/srv/faktury', dialect: 'polish' });
  await page.screenshot({ path: join(out, 'billing-export-nbp-down.png'), fullPage: true });
});

// ---- KSeF (the Billing view's KSeF part)
const KSEF_TOKEN = '20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e';
const row = (page, number) => page.getByTestId(`ksef-row-${number}`);

async function openKsef(page, scenario) {
  await page.goto(`${base}?scenario=${scenario}`);
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  await page.getByTestId('billing-month').fill('2026-10');
  await page.getByTestId('ksef').waitFor();
}

await test('ksef token: save, replace and delete; the token never comes back to the page', async (page) => {
  await openKsef(page, 'billing-no-token');
  await page.getByTestId('ksef-token-state').filter({ hasText: 'no KSeF token stored' }).waitFor();
  assert.match(await text(page, '[data-testid="ksef-token-state"]'), /Seller NIP 1234563218/);
  assert.equal(await page.getByTestId('ksef-token-input').getAttribute('type'), 'password');
  assert.ok(await page.getByTestId('ksef-send').isDisabled(), 'no token, no sending');
  assert.ok(await page.getByTestId('ksef-token-save').isDisabled(), 'nothing typed, nothing to save');
  assert.equal(await page.getByTestId('ksef-token-delete').count(), 0);
  assert.equal(await text(page, '[data-testid="ksef-token-save"]'), 'Save token');
  await page.screenshot({ path: join(out, 'ksef-token-absent.png'), fullPage: true });

  await page.getByTestId('ksef-token-input').fill(KSEF_TOKEN);
  await page.getByTestId('ksef-token-save').click();
  await page.getByTestId('ksef-token-message').waitFor();
  assert.match(await text(page, '[data-testid="ksef-token-message"]'), /KSeF token stored in the OS keychain \(…6d5e\)/);
  assert.equal(await page.getByTestId('ksef-token-input').inputValue(), '');
  assert.match(await text(page, '[data-testid="ksef-token-state"]'), /token in the OS keychain …6d5e/);
  assert.equal(await text(page, '[data-testid="ksef-token-save"]'), 'Replace token');
  assert.ok(!(await page.getByTestId('ksef-send').isDisabled()), 'a token: sending possible');
  assert.ok(!(await page.content()).includes('6f1c0e7b9a2d'), 'the plaintext token must not stay in the page');
  await page.screenshot({ path: join(out, 'ksef-token-stored.png'), fullPage: true });

  // Replace; a pasted token with a line break is refused with the backend's message.
  await page.getByTestId('ksef-token-input').fill('broken token');
  await page.getByTestId('ksef-token-save').click();
  await page.getByTestId('ksef-token-error').waitFor();
  assert.match(await text(page, '[data-testid="ksef-token-error"]'), /paste it again as one line/);
  assert.equal(await page.getByTestId('ksef-token-input').inputValue(), '');
  const replacement = KSEF_TOKEN.replace('6d5e', '0f0f');
  await page.getByTestId('ksef-token-input').fill(replacement);
  await page.getByTestId('ksef-token-save').click();
  await page.getByTestId('ksef-token-message').filter({ hasText: 'replaced' }).waitFor();
  assert.match(await text(page, '[data-testid="ksef-token-message"]'), /replaced in the OS keychain \(…0f0f\)/);
  assert.equal(await page.getByTestId('ksef-token-error').count(), 0);

  // Delete asks first; Cancel deletes nothing.
  await page.getByTestId('ksef-token-delete').click();
  assert.match(await text(page, '[data-testid="ksef-token-confirm"]'), /Delete the KSeF token of seller NIP 1234563218/);
  await page.screenshot({ path: join(out, 'ksef-token-delete-confirm.png'), fullPage: true });
  await page.getByTestId('ksef-token-delete-cancel').click();
  let calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
  assert.ok(!calls.includes('ksef_token_delete'), 'cancel deletes nothing');
  await page.getByTestId('ksef-token-delete').click();
  await page.getByTestId('ksef-token-delete-confirm').click();
  await page.getByTestId('ksef-token-state').filter({ hasText: 'no KSeF token stored' }).waitFor();
  assert.match(await text(page, '[data-testid="ksef-token-message"]'), /deleted/);
  calls = await page.evaluate(() => window.__calls);
  assert.deepEqual(calls.filter((c) => c.cmd === 'ksef_token_set').map((c) => c.args), [
    { token: KSEF_TOKEN }, { token: 'broken token' }, { token: replacement },
  ]);
  assert.equal(calls.filter((c) => c.cmd === 'ksef_token_delete').length, 1);
});

await test('ksef rows: accepted, correction, rejected with reason and fix, failed, processing, not issued', async (page) => {
  await openKsef(page, 'billing');
  await page.getByTestId('ksef-table').waitFor();
  assert.equal(await text(page, '[data-testid="ksef-env"]'), 'KSeF test');
  const badge = (n) => row(page, n).getByTestId('ksef-badge').innerText();
  assert.equal(await badge('FV/2026/10/0001'), 'accepted');
  assert.match(await row(page, 'FV/2026/10/0001').innerText(), /1234563218-20261103-0100001AF629-1C[\s\S]*received 2026-11-03 09:15 UTC/);
  assert.match(await row(page, 'FV/2026/10/0001').innerText(), /1\u00a0584,18\u00a0PLN/);
  // The correction says what it corrects, by number and KSeF number.
  assert.equal(await badge('FK/2026/10/0001'), 'accepted');
  assert.match(await row(page, 'FK/2026/10/0001').innerText(), /KOR/);
  assert.match(await row(page, 'FK/2026/10/0001').getByTestId('ksef-corrects').innerText(),
    /corrects FV\/2026\/09\/0001\s+KSeF 1234563218-20261002-0100002B1C44-7E/);
  assert.match(await row(page, 'FK/2026/10/0001').innerText(), /-123,00\u00a0PLN/);
  // The rejection: KSeF's code and words, its details, and what to do.
  assert.equal(await badge('FV/2026/10/0002'), 'rejected');
  assert.equal(await row(page, 'FV/2026/10/0002').getByTestId('ksef-rejection').innerText(), '440 Duplikat faktury');
  assert.match(await row(page, 'FV/2026/10/0002').innerText(), /originalKsefNumber: 1234563218-20261015-0100003C2D55-4B/);
  assert.match(await row(page, 'FV/2026/10/0002').getByTestId('ksef-fix').innerText(), /^What to do: KSeF already has .*invoice_number_format/);
  assert.equal(await row(page, 'FV/2026/10/0002').getByTestId('ksef-upo').count(), 0);
  assert.equal(await badge('FV/2026/10/0003'), 'send failed');
  assert.match(await row(page, 'FV/2026/10/0003').getByTestId('ksef-row-error').innerText(), /did not answer within 30 s.*sending again is safe/);
  assert.equal(await badge('FV/2026/10/0004'), 'sent · KSeF processing');
  assert.match(await row(page, 'FV/2026/10/0004').innerText(), /310,50\u00a0USD/);
  assert.equal(await badge('tiny'), 'not issued');
  assert.match(await row(page, 'tiny').innerText(), /missing invoice data: NIP/);
  await page.screenshot({ path: join(out, 'ksef-rows.png'), fullPage: true });
  await page.getByTestId('ksef').screenshot({ path: join(out, 'ksef-panel.png') });
});

await test('ksef send: progress while running, then the summary and the reloaded rows', async (page) => {
  await openKsef(page, 'billing');
  await page.getByTestId('ksef-table').waitFor();
  await page.getByTestId('ksef-send').click();
  // The mock holds the send after the second invoice went out.
  await page.getByTestId('ksef-progress').filter({ hasText: '1/3' }).waitFor();
  assert.match(await text(page, '[data-testid="ksef-progress"]'), /Sending FV\/2026\/10\/0003/);
  assert.equal(await page.locator('[data-testid="ksef-progress"] progress').getAttribute('max'), '3');
  assert.ok(await page.getByTestId('ksef-send').isDisabled());
  assert.equal(await text(page, '[data-testid="ksef-send"]'), 'Sending…');
  await page.screenshot({ path: join(out, 'ksef-send-progress.png'), fullPage: true });
  await page.waitForFunction(() => typeof window.__releaseKsefSend === 'function');
  await page.evaluate(() => window.__releaseKsefSend());
  await page.getByTestId('ksef-summary').waitFor();
  assert.equal(await page.getByTestId('ksef-progress').count(), 0);
  assert.match(await text(page, '[data-testid="ksef-summary"]'), /2 accepted, 1 rejected, 0 failed: see the rows below for what to do/);
  await row(page, 'FV/2026/10/0003').getByTestId('ksef-badge').filter({ hasText: 'accepted' }).waitFor();
  assert.equal(await row(page, 'FV/2026/10/0003').getByTestId('ksef-row-error').count(), 0);
  assert.equal(await row(page, 'FV/2026/10/0004').getByTestId('ksef-badge').innerText(), 'accepted');
  assert.equal(await row(page, 'FV/2026/10/0002').getByTestId('ksef-badge').innerText(), 'rejected');
  const calls = await page.evaluate(() => window.__calls);
  assert.deepEqual(calls.filter((c) => c.cmd === 'ksef_send').map((c) => c.args), [{ month: '2026-10', clientId: null }]);
  const idx = calls.findIndex((c) => c.cmd === 'ksef_send');
  assert.ok(calls.slice(idx + 1).some((c) => c.cmd === 'ksef_status' && c.args.month === '2026-10'), 'rows reloaded after the send');
  await page.screenshot({ path: join(out, 'ksef-send-done.png'), fullPage: true });
});

await test('ksef UPO: saved into the month folder, or the folder given', async (page) => {
  await openKsef(page, 'billing');
  await page.getByTestId('ksef-table').waitFor();
  await row(page, 'FV/2026/10/0001').getByTestId('ksef-upo').click();
  await page.getByTestId('ksef-upo-message').waitFor();
  assert.equal(await text(page, '[data-testid="ksef-upo-message"]'),
    'Receipt (UPO) of FV/2026/10/0001 saved to /home/anna/mai-invoices/2026-10/UPO_1234563218-20261103-0100001AF629-1C.xml');
  await page.getByTestId('export-dir').fill('/srv/faktury');
  await row(page, 'FK/2026/10/0001').getByTestId('ksef-upo').click();
  await page.getByTestId('ksef-upo-message').filter({ hasText: 'FK/2026/10/0001' }).waitFor();
  assert.match(await text(page, '[data-testid="ksef-upo-message"]'), /saved to \/srv\/faktury\/UPO_1234563218-20261103-0100001AF62A-52\.xml/);
  const upo = (await page.evaluate(() => window.__calls)).filter((c) => c.cmd === 'ksef_upo').map((c) => c.args);
  assert.deepEqual(upo, [
    { month: '2026-10', ksefNumber: '1234563218-20261103-0100001AF629-1C', outDir: null },
    { month: '2026-10', ksefNumber: '1234563218-20261103-0100001AF62A-52', outDir: '/srv/faktury' },
  ]);
  await page.screenshot({ path: join(out, 'ksef-upo.png'), fullPage: true });
});

await test('ksef send with KSeF unreachable: the rows stay, the message says what failed and what to do', async (page) => {
  await openKsef(page, 'billing-ksef-down');
  await page.getByTestId('ksef-table').waitFor();
  assert.equal(await page.getByTestId('ksef-status-error').count(), 0);
  await page.getByTestId('ksef-send').click();
  await page.getByTestId('ksef-send-error').waitFor();
  assert.match(await text(page, '[data-testid="ksef-send-error"]'), /Send failed: KSeF POST \/auth\/challenge: could not reach .*check the network/);
  assert.equal(await page.getByTestId('ksef-progress').count(), 0);
  assert.ok(!(await page.getByTestId('ksef-send').isDisabled()));
  assert.equal(await row(page, 'FV/2026/10/0001').getByTestId('ksef-badge').innerText(), 'accepted');
  await page.screenshot({ path: join(out, 'ksef-down.png'), fullPage: true });
});

await test('ksef narrow window: one card per invoice, the rejection readable, no page-level sideways scroll', async (page) => {
  await openKsef(page, 'billing');
  await page.getByTestId('ksef-table').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page overflows by ${overflow}px`);
  // The rejection's "what to do" lies inside the window, not off to the right.
  const fix = await page.getByTestId('ksef-fix').boundingBox();
  assert.ok(fix && fix.x >= 0 && fix.x + fix.width <= 420, JSON.stringify(fix));
  await page.screenshot({ path: join(out, 'ksef-narrow.png'), fullPage: true });
}, { width: 420, height: 800 });

await test('narrow window: no page-level horizontal overflow, keyboard reaches everything', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page overflows by ${overflow}px`);
  // Tab from the top reaches the nav (eight entries), then the toolbar buttons.
  const seen = [];
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.textContent?.trim()));
  }
  assert.ok(seen.includes('nav-keys') && seen.includes('refresh') && seen.includes('sync-all'), JSON.stringify(seen));
  await page.screenshot({ path: join(out, 'fleet-narrow.png'), fullPage: true });
  await page.getByTestId('nav-client').click();
  await page.getByTestId('card-today-cost').waitFor();
  const o2 = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(o2 <= 0, `dashboard overflows by ${o2}px`);
  await page.screenshot({ path: join(out, 'client-narrow.png'), fullPage: true });
}, { width: 420, height: 800 });

await test('client trend at sub-cent costs: nice axis steps, no repeated labels, exact legend', async (page) => {
  await page.goto(base + '?scenario=small-costs');
  await page.getByTestId('nav-client').click();
  const chart = page.getByTestId('trend-chart');
  await chart.locator('canvas').waitFor();
  const ticks = (await chart.getAttribute('data-usd-ticks')).split(' ');
  assert.deepEqual(ticks, ['0.0000', '0.0005', '0.0010', '0.0015', '0.0020', '0.0025']);
  assert.deepEqual((await chart.getAttribute('data-req-ticks')).split(' '), ['0', '1', '2', '3', '4']);
  // Hovering the last day: the legend shows the day's cost by the seed's rule, exactly.
  const box = await chart.locator('.u-over').boundingBox();
  await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
  await page.locator('.u-legend .u-series:nth-child(2) .u-value').filter({ hasText: '$0.002098' }).waitFor();
  assert.equal(await text(page, '.u-legend .u-series:nth-child(3) .u-value'), '2');
  await page.screenshot({ path: join(out, 'client-trend-small.png'), fullPage: true });
});

// Dark theme (issue 14): the same views with the system set to dark.
const dark = { colorScheme: 'dark' };
const isDark = (page) => page.evaluate(() => {
  const rgb = getComputedStyle(document.documentElement).backgroundColor.match(/\d+/g).map(Number);
  return rgb[0] + rgb[1] + rgb[2] < 150;
});
await test('dark theme: fleet view follows the system setting', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  assert.ok(await isDark(page), 'the page background is dark');
  assert.equal(await text(page, '[data-testid="row-tiny"] [data-testid="today-cost"]'), '$0.000864');
  await page.screenshot({ path: join(out, 'fleet-dark.png'), fullPage: true });
}, undefined, dark);

await test('dark theme: client view, chart and tables', async (page) => {
  await page.goto(base);
  await page.getByTestId('row-acme').waitFor();
  await page.locator('[data-testid="row-acme"] button', { hasText: 'Open' }).click();
  await page.locator('[data-testid="trend-chart"] canvas').waitFor();
  assert.ok(await isDark(page), 'the page background is dark');
  await page.screenshot({ path: join(out, 'client-dark.png'), fullPage: true });
  await page.locator('#tab-users').click();
  await page.getByTestId('table-users').waitFor();
  await page.screenshot({ path: join(out, 'client-dark-by-user.png'), fullPage: true });
}, undefined, dark);

await test('dark theme: the chart redraws when the system setting flips', async (page) => {
  await page.goto(base + '?scenario=small-costs');
  await page.getByTestId('nav-client').click();
  const canvas = page.locator('[data-testid="trend-chart"] canvas');
  await canvas.waitFor();
  const light = await canvas.evaluate((c) => c.toDataURL());
  assert.ok(!(await isDark(page)));
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.waitForFunction((before) => {
    const c = document.querySelector('[data-testid="trend-chart"] canvas');
    return c && c.toDataURL() !== before;
  }, light, { timeout: 5000 });
  assert.ok(await isDark(page));
  assert.equal(await page.locator('[data-testid="trend-chart"] canvas').count(), 1, 'one chart, not a second one');
});

await test('dark theme: sub-cent chart, PLN warning banner', async (page) => {
  await page.goto(base + '?scenario=small-costs');
  await page.getByTestId('nav-client').click();
  await page.locator('[data-testid="trend-chart"] canvas').waitFor();
  await page.screenshot({ path: join(out, 'client-trend-small-dark.png'), fullPage: true });
  await page.goto(base + '?scenario=no-pln');
  await page.getByTestId('nav-client').click();
  await page.getByTestId('pln-warning').waitFor();
  await page.screenshot({ path: join(out, 'client-no-pln-dark.png'), fullPage: true });
}, undefined, dark);

await test('dark theme: billing report and KSeF rows', async (page) => {
  await page.goto(base + '?scenario=billing-deadline');
  await page.getByTestId('nav-billing').click();
  await page.getByTestId('billing-table').waitFor();
  await page.screenshot({ path: join(out, 'billing-dark.png'), fullPage: true });
}, undefined, dark);

// Onboarding and offboarding (issue 13): lifecycle.mjs.
await lifecycleTests({ test, base, out, text });
// The fleet overview: totals, sort/filter/search, projections, usage export (issue 14).
await (await import('./overview.mjs')).overviewTests({ test, base, out, text });
// The client change dialog, audit history and Update view (issue 13).
await (await import('./change_update.mjs')).default({ test, base, out, text });
// Alerts (issue 14).
await (await import('./alerts.mjs')).default({ test, base, out, text });
// The Backups panel of a client (issue 14).
await (await import('./backup.mjs')).default({ test, base, out, text });
// Every view at 1280x800 and narrow, light and dark (issue 14).
await (await import('./views.mjs')).default({ test, base, out, text });

await browser.close();
server.close();
const failed = results.filter(([, e]) => e);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${out}`);
process.exit(failed.length ? 1 : 0);
