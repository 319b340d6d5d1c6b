// Page tests of the Clients view (issue 13): the onboarding form's field errors, its
// progress while the steps run, the result; a failure with its undo; offboarding's
// final check, typed confirmation and result. Called by run.mjs with its helpers.
import assert from 'node:assert/strict';
import { join } from 'node:path';

export async function lifecycleTests({ test, base, out, text }) {
  const fill = async (page, values) => {
    for (const [k, v] of Object.entries(values)) await page.getByTestId('f-' + k).fill(v);
  };
  const good = {
    id: 'kowalski', legal_name: 'Kancelaria Kowalski i Wspólnicy sp.k.', nip: '701-000-21-39',
    address: 'ul. Marszałkowska 10', address_line2: '00-590 Warszawa', invoice_email: 'faktury@kowalski.pl',
    markup: '1.25', monthly_limit_usd: '300', tracker_port: '18100', chat_port: '18101',
  };

  await test('onboarding form: errors next to each field, nothing submitted', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-clients').click();
    await page.getByTestId('onboard-form').waitFor();
    // The host list comes from the fleet file.
    assert.deepEqual(await page.getByTestId('f-host').locator('option').allTextContents(), ['hel1', 'local']);
    await fill(page, { ...good, nip: '526-104-08-29', legal_name: '', markup: '1,3', tracker_port: '' });
    await page.getByTestId('onboard-submit').click();
    await page.getByTestId('error-client.nip').waitFor();
    assert.match(await text(page, '[data-testid="error-client.nip"]'), /wrong check digit/);
    assert.match(await text(page, '[data-testid="error-client.legal_name"]'), /required/);
    assert.match(await text(page, '[data-testid="error-client.markup"]'), /not a decimal number; write e\.g\. 1\.3/);
    assert.match(await text(page, '[data-testid="error-deploy.tracker_port"]'), /a free port/);
    assert.match(await text(page, '[data-testid="onboard-invalid"]'), /4 fields to fix/);
    // Each invalid field says so to assistive technology, and points at its message.
    assert.equal(await page.getByTestId('f-nip').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByTestId('f-nip').getAttribute('aria-describedby'), 'err-client-nip');
    assert.equal(await page.getByTestId('f-address').getAttribute('aria-invalid'), null);
    // Focus moved to the first invalid field.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'f-legal_name');
    const calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    assert.ok(calls.includes('onboard_validate'));
    assert.ok(!calls.includes('onboard_client'), 'an invalid form is not submitted');
    await page.screenshot({ path: join(out, 'onboard-form-errors.png'), fullPage: true });
    // Fixed, the errors go away on Check.
    await fill(page, good);
    await page.getByTestId('onboard-check').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid^="error-"]'));
    assert.equal(await page.getByTestId('onboard-invalid').count(), 0);
  });

  await test('onboarding: progress per step while it runs, then the result', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-clients').click();
    await page.getByTestId('onboard-form').waitFor();
    await fill(page, good);
    await page.getByTestId('f-host').selectOption('local');
    await page.getByTestId('onboard-submit').click();
    // The mock holds onboarding while the pair starts: the steps so far are done.
    await page.locator('[data-testid="step-wait_healthy"][data-state="started"]').waitFor();
    assert.equal(await page.locator('[data-testid="step-create_key"]').getAttribute('data-state'), 'done');
    assert.match(await text(page, '[data-testid="step-create_key"]'), /limit \$240\.00 per month/);
    assert.equal(await page.locator('[data-testid="step-probe"]').getAttribute('data-state'), 'pending');
    assert.match(await text(page, '[data-testid="onboard-progress"]'), /Onboarding kowalski…/);
    await page.screenshot({ path: join(out, 'onboard-progress.png'), fullPage: true });
    await page.waitForFunction(() => typeof window.__releaseOnboard === 'function');
    await page.evaluate(() => window.__releaseOnboard());
    await page.getByTestId('onboard-result').waitFor();
    assert.match(await text(page, '[data-testid="onboard-result"]'), /kowalski is onboarded on host local/);
    const facts = await text(page, '[data-testid="onboard-facts"]');
    assert.match(facts, /http:\/\/127\.0\.0\.1:18101/);
    assert.match(facts, /sk-or-v1-…7f3a/);
    assert.match(facts, /capped at \$240\.00 per month/);
    assert.match(facts, /signed \(JWT\)/);
    assert.equal(await page.locator('[data-testid="onboard-steps"] [data-state="done"]').count(), 12);
    const calls = await page.evaluate(() => window.__calls);
    const req = calls.find((c) => c.cmd === 'onboard_client').args.request;
    assert.deepEqual(req.client.nip, '701-000-21-39');
    assert.deepEqual(req.client.markup, '1.25');
    assert.deepEqual(req.deploy, {
      host: 'local', tracker_port: 18100, chat_port: 18101, publish_address: null, chat_image: null,
      tracker_image: null, signed_identity: true, tracker_openrouter_url: null, placement: [],
    });
    // The shell reloads its client list (the new client shows in the menus).
    const idx = calls.findIndex((c) => c.cmd === 'onboard_client');
    assert.ok(calls.slice(idx + 1).some((c) => c.cmd === 'app_info'));
    await page.screenshot({ path: join(out, 'onboard-result.png'), fullPage: true });
  });

  await test('onboarding failure: the failed step, what was undone, the message', async (page) => {
    await page.goto(base + '?scenario=onboard-port-clash');
    await page.getByTestId('nav-clients').click();
    await page.getByTestId('onboard-form').waitFor();
    await fill(page, good);
    await page.getByTestId('onboard-submit').click();
    await page.getByTestId('onboard-failure').waitFor();
    assert.equal(await page.locator('[data-testid="step-start_tracker"]').getAttribute('data-state'), 'failed');
    assert.equal(await page.locator('[data-testid="step-undo_key"]').getAttribute('data-state'), 'done');
    const msg = await text(page, '[data-testid="onboard-failure"]');
    assert.match(msg, /port 127\.0\.0\.1:18100 is already in use.*choose another tracker port/);
    assert.match(msg, /key mai-kowalski-20261124101500 disabled.*the fleet file was not changed/);
    await page.screenshot({ path: join(out, 'onboard-failed.png'), fullPage: true });
    await page.getByTestId('onboard-again').click();
    assert.equal(await page.getByTestId('f-id').inputValue(), 'kowalski', 'the form keeps what was typed');
  });

  await test('offboarding: final billing check, typed confirmation, result', async (page) => {
    await page.goto(base);
    await page.getByTestId('nav-clients').click();
    await page.getByTestId('off-client').selectOption('tiny');
    await page.getByTestId('off-check').click();
    await page.getByTestId('off-billing').waitFor();
    const billing = await text(page, '[data-testid="off-billing"]');
    assert.match(billing, /2026-10\s+issued\s+FV\/2026\/10\/0002/);
    assert.match(billing, /2026-11\s+provisional/);
    assert.match(await text(page, '[data-testid="off-summary"]'), /mai-tiny-tracker/);
    await page.getByTestId('off-start').click();
    assert.ok(await page.getByTestId('off-dialog').evaluate((d) => d.open));
    assert.ok(await page.getByTestId('off-confirm').isDisabled(), 'nothing happens before the id is typed');
    await page.getByTestId('off-confirm-input').fill('tin');
    assert.ok(await page.getByTestId('off-confirm').isDisabled());
    await page.getByTestId('off-confirm-input').fill('tiny');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(out, 'offboard-confirm.png'), fullPage: true });
    // Cancel does nothing.
    await page.getByTestId('off-cancel').click();
    let calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    assert.ok(!calls.includes('offboard_client'));
    await page.getByTestId('off-start').click();
    await page.getByTestId('off-confirm-input').fill('tiny');
    await page.getByTestId('off-confirm').click();
    await page.getByTestId('off-result').waitFor();
    assert.match(await text(page, '[data-testid="off-result"]'), /tiny is offboarded \(2026-11-24\)/);
    assert.equal(await page.locator('[data-testid="off-steps"] [data-state="done"]').count(), 11);
    assert.match(await text(page, '[data-testid="offboard"]'), /24,690 events, \$257\.30 OpenRouter cost/);
    calls = await page.evaluate(() => window.__calls);
    assert.deepEqual(calls.filter((c) => c.cmd === 'offboard_client').map((c) => c.args), [{ clientId: 'tiny' }]);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(out, 'offboard-result.png'), fullPage: true });
  });
}
