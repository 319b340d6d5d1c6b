// Page tests of the client change dialog, the audit history and the Update view (run by
// run.mjs with its browser, helpers and output folder).
import assert from 'node:assert/strict';
import { join } from 'node:path';

export default async function changeUpdateTests({ test, base, out, text }) {
  await test('client change: errors per field, nothing applied', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-client').click();
    await page.getByTestId('client-change').click();
    await page.getByTestId('field-nip').waitFor();
    assert.equal(await page.getByTestId('field-nip').inputValue(), '526-104-08-28');
    assert.equal(await page.getByTestId('field-monthly_limit_usd').inputValue(), '500');
    await page.getByTestId('field-markup').fill('0.9');
    await page.getByTestId('field-markup_from').fill('2026-10-15');
    await page.getByTestId('field-monthly_limit_usd').fill('ten');
    await page.getByTestId('field-nip').fill('526-104-08-29');
    await page.getByTestId('field-invoice_currency').fill('EUR');
    await page.getByTestId('field-invoice_email').fill('faktury at acme');
    await page.getByTestId('change-review-button').click();
    await page.getByTestId('change-invalid').waitFor();
    assert.match(await text(page, '[data-testid="change-invalid"]'), /6 fields need correcting; nothing was changed/);
    assert.match(await text(page, '[data-testid="error-markup"]'), /below 1/);
    assert.match(await text(page, '[data-testid="error-markup_from"]'), /invoiced \(FV\/2026\/11\/0001\)/);
    assert.match(await text(page, '[data-testid="error-monthly_limit_usd"]'), /not a decimal number/);
    assert.match(await text(page, '[data-testid="error-nip"]'), /not a valid Polish NIP/);
    assert.match(await text(page, '[data-testid="error-invoice_currency"]'), /PLN or USD/);
    assert.match(await text(page, '[data-testid="error-invoice_email"]'), /not an e-mail address/);
    assert.equal(await page.getByTestId('error-address').count(), 0, 'fields without a problem have no error');
    assert.equal(await page.getByTestId('field-nip').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByTestId('change-apply').count(), 0, 'nothing to apply while a field is wrong');
    const calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    assert.ok(!calls.includes('client_change'), 'nothing applied');
    await page.screenshot({ path: join(out, 'client-change-errors.png') });
  });

  await test('client change: review old → new, apply, history shows it', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-client').click();
    await page.getByTestId('client-history').waitFor();
    await page.getByTestId('history-0').waitFor();
    assert.match(await text(page, '[data-testid="history-0"]'), /anna[\s\S]*Image update[\s\S]*mai-tracker:0\.1\.0[\s\S]*mai-tracker:0\.1\.1-rc1[\s\S]*rolled back/);
    assert.match(await text(page, '[data-testid="history-1"]'), /bartek[\s\S]*monthly limit \(USD\): 400 → 500[\s\S]*ok/);
    await page.getByTestId('client-change').click();
    await page.getByTestId('field-markup').waitFor();
    await page.getByTestId('field-markup').fill('1.4');
    await page.getByTestId('field-markup_from').fill('2026-12-01');
    await page.getByTestId('field-monthly_limit_usd').fill('200');
    await page.getByTestId('change-review-button').click();
    await page.getByTestId('change-review').waitFor();
    const review = await text(page, '[data-testid="change-review"]');
    assert.match(review, /Markup: 1\.35 → 1\.4 from 2026-12-01/);
    assert.match(review, /Monthly limit \(USD\): 500 → 200/);
    assert.match(review, /from 2026-12-01 the new markup makes it 142\.85 USD[\s\S]*--monthly-limit 200/);
    let calls = await page.evaluate(() => window.__calls.filter((c) => c.cmd === 'client_change_check'));
    // Only what differs from the fleet file is sent.
    assert.deepEqual(calls[0].args, { clientId: 'acme', change: { invoice: [], markup: { rate: '1.4', from: '2026-12-01' }, monthly_limit_usd: '200' } });
    await page.screenshot({ path: join(out, 'client-change-review.png') });
    await page.getByTestId('change-apply').click();
    await page.getByTestId('change-result').waitFor();
    const res = await text(page, '[data-testid="change-result"]');
    assert.match(res, /Fleet file: done; OpenRouter key: done \(cap \$148\.14\); tracker: done/);
    assert.match(res, /audit\.log/);
    await page.screenshot({ path: join(out, 'client-change-applied.png') });
    await page.getByTestId('change-close').click();
    // The history is read again and the change is on top.
    await page.getByTestId('history-2').waitFor();
    assert.match(await text(page, '[data-testid="history-0"]'), /anna[\s\S]*Changed[\s\S]*markup: 1\.35 → 1\.4 from 2026-12-01[\s\S]*monthly limit \(USD\): 500 → 200/);
    calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    const at = calls.lastIndexOf('client_change');
    assert.ok(calls.slice(at + 1).includes('client_history'));
    assert.ok(calls.slice(at + 1).includes('client_dashboard'), 'the dashboard is read again');
    await page.getByTestId('client-history').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(out, 'client-history.png'), fullPage: true });
  });

  await test('client change: tracker down after OpenRouter took it is said with what to do', async (page) => {
    await page.goto(base + '?scenario=change-tracker-down');
    await page.getByTestId('nav-client').click();
    await page.getByTestId('client-change').click();
    await page.getByTestId('field-monthly_limit_usd').waitFor();
    await page.getByTestId('field-monthly_limit_usd').fill('250');
    await page.getByTestId('change-review-button').click();
    await page.getByTestId('change-apply').click();
    await page.getByTestId('change-warning').waitFor();
    assert.match(await text(page, '[data-testid="change-result"]'), /tracker: FAILED/);
    assert.match(await text(page, '[data-testid="change-warning"]'), /cap, which enforces the limit, is already set[\s\S]*maictl sync --client acme/);
    await page.screenshot({ path: join(out, 'client-change-tracker-down.png') });
  });

  await test('update view: preview, canary first, per-client progress and gate checks, summary', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-update').click();
    await page.getByTestId('update-preview').click();
    await page.getByTestId('update-error').waitFor();
    assert.match(await text(page, '[data-testid="update-error"]'), /name the new image/);
    await page.getByTestId('update-tracker-image').fill('mai-tracker:0.2.0');
    await page.getByTestId('update-preview').click();
    await page.getByTestId('update-table').waitFor();
    assert.match(await text(page, '[data-testid="update-row-acme"]'), /canary[\s\S]*mai-tracker:0\.1\.0[\s\S]*mai-tracker:0\.2\.0[\s\S]*will update/);
    assert.match(await text(page, '[data-testid="update-row-gone"]'), /image missing on host/);
    assert.equal(await text(page, '[data-testid="update-run"]'), 'Update 2 clients');
    await page.screenshot({ path: join(out, 'update-preview.png'), fullPage: true });
    await page.getByTestId('update-run').click();
    // The mock holds the update after the canary passed and the next client's first check.
    await page.getByTestId('update-outcome-acme').waitFor();
    await page.getByTestId('gate-tiny-tracker_ready').waitFor();
    assert.match(await text(page, '[data-testid="update-outcome-acme"]'), /updated/);
    for (const c of ['tracker_ready', 'probe_metered', 'chat_healthy']) {
      assert.match(await text(page, `[data-testid="gate-acme-${c}"]`), /✓/);
    }
    assert.match(await text(page, '[data-testid="gate-acme-probe_metered"]'), /metered \(0\.0000027 USD/);
    assert.match(await text(page, '[data-testid="update-progress-tiny"]'), /health gate…/);
    assert.match(await text(page, '[data-testid="update-outcome-gone"]'), /failed/);
    assert.ok(await page.getByTestId('update-run').isDisabled());
    await page.screenshot({ path: join(out, 'update-progress.png'), fullPage: true });
    await page.waitForFunction(() => typeof window.__releaseUpdate === 'function');
    await page.evaluate(() => window.__releaseUpdate());
    await page.getByTestId('update-summary').waitFor();
    assert.match(await text(page, '[data-testid="update-summary"]'), /Updated 1, rolled back 1, skipped 0, failed 1 in 71\.3 s/);
    assert.equal(await text(page, '[data-testid="update-run"]'), 'Preview first');
    assert.ok(await page.getByTestId('update-run').isDisabled());
    assert.match(await text(page, '[data-testid="update-outcome-tiny"]'), /rolled back/);
    assert.match(await text(page, '[data-testid="gate-tiny-chat_healthy"]'), /✗ chat healthy[\s\S]*connection refused/);
    const calls = await page.evaluate(() => window.__calls.filter((c) => c.cmd === 'fleet_update'));
    assert.deepEqual(calls[0].args.plan, { tracker_image: 'mai-tracker:0.2.0', chat_image: null, parallelism: 4, gate_timeout_ms: 60000, clients: [], canary: null });
    await page.screenshot({ path: join(out, 'update-summary.png'), fullPage: true });
  });

  await test('update view: a failed canary stops the rollout', async (page) => {
    await page.goto(base + '?scenario=update-canary-fails');
    await page.getByTestId('nav-update').click();
    await page.getByTestId('update-tracker-image').fill('mai-tracker:0.2.0');
    await page.getByTestId('update-parallelism').fill('2');
    await page.getByTestId('update-canary').selectOption('acme');
    await page.getByTestId('update-preview').click();
    await page.getByTestId('update-table').waitFor();
    await page.getByTestId('update-run').click();
    await page.getByTestId('update-summary').waitFor();
    assert.match(await text(page, '[data-testid="update-stopped"]'), /canary acme was not updated/);
    assert.match(await text(page, '[data-testid="update-outcome-acme"]'), /rolled back/);
    assert.match(await text(page, '[data-testid="gate-acme-tracker_ready"]'), /✗ tracker ready[\s\S]*exit code 1/);
    assert.match(await text(page, '[data-testid="update-outcome-tiny"]'), /skipped/);
    assert.match(await text(page, '[data-testid="update-progress-tiny"]'), /the canary acme failed/);
    const plan = (await page.evaluate(() => window.__calls.find((c) => c.cmd === 'fleet_update'))).args.plan;
    assert.equal(plan.parallelism, 2);
    assert.equal(plan.canary, 'acme');
    await page.screenshot({ path: join(out, 'update-canary-failed.png'), fullPage: true });
  });
}
