// Page tests of the fleet overview (issue 14): the totals strip (with and without the
// account's credits, a stale or missing PLN rate), sorting / filtering / search of 200
// rows, month-end projections, and the client view's usage export with its progress.
// Called by run.mjs with its helpers; screenshots at 1280x800 and 420 px wide.
import assert from 'node:assert/strict';
import { join } from 'node:path';

/** A displayed USD amount ("$1,234.56", "$0.000864") as integer micro-dollars, exactly. */
function micros(s) {
  const m = /^(-?)\$([\d,]+)\.(\d+)$/.exec(s.trim());
  assert.ok(m, `not a USD amount: ${s}`);
  const frac = m[3].padEnd(6, '0');
  return BigInt(m[1] + m[2].replaceAll(',', '') + frac);
}

export async function overviewTests({ test, base, out, text }) {
  const narrow = { width: 420, height: 800 };
  const rowIds = (page) => page.locator('[data-testid^="row-"]').evaluateAll((els) => els.map((e) => e.dataset.testid.slice(4)));
  const rowCount = async (page) => Number(await page.getByTestId('fleet-table').getAttribute('aria-rowcount')) - 1;
  // The table renders only the rows in view (lib/rowWindow.ts): scroll through the page
  // and collect every row by its aria-rowindex, asserting at each step that
  // - the rendered rows cover the part of the table in view (no blank spacer shows),
  // - a row in view moved by exactly the distance scrolled (nothing jumps: the view's
  //   own correction is tested, the browser's scroll anchoring being off for the table),
  // and at the end that no row was skipped and nothing raised an error (ResizeObserver
  // loops are reported as window errors, not page errors: see `watchErrors`).
  const allRows = async (page) => {
    const byIndex = new Map();
    await page.evaluate(() => window.scrollTo(0, 0));
    let ref = null;
    for (let step = 0; ; step++) {
      const r = await page.evaluate(async (ref) => {
        await window.__settle();
        const trs = [...document.querySelectorAll('[data-testid^="row-"]')];
        const seen = trs.map((tr) => ({
          index: Number(tr.getAttribute('aria-rowindex')),
          id: tr.dataset.client,
          today: tr.querySelector('[data-testid="today-cost"]').innerText.trim(),
          month: tr.querySelector('[data-label="Month / limit"]').firstChild.textContent.trim(),
        }));
        const { need, have } = window.__cover();
        let moved = null;
        if (ref) {
          const el = document.querySelector(`[data-client="${ref.id}"]`);
          moved = el ? { by: ref.top - el.getBoundingClientRect().top, scrolled: window.scrollY - ref.y } : { gone: ref.id };
        }
        // A row low in view now: still in view after the scroll below.
        const next = trs.find((tr) => tr.getBoundingClientRect().top >= window.innerHeight * 0.7);
        const nextRef = next ? { id: next.dataset.client, top: next.getBoundingClientRect().top, y: window.scrollY } : null;
        const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1;
        window.scrollBy(0, Math.round(window.innerHeight * 0.7));
        return { seen, need, have, moved, nextRef, atEnd };
      }, ref);
      assert.ok(r.have[0] <= r.need[0] + 1 && r.have[1] >= r.need[1] - 1,
        `step ${step}: rows cover ${r.have.map(Math.round)} of the table's ${r.need.map(Math.round)} in view`);
      if (r.moved) {
        assert.ok(!r.moved.gone, `step ${step}: row ${r.moved.gone}, in view, is no longer rendered`);
        assert.ok(Math.abs(r.moved.by - r.moved.scrolled) <= 1, `step ${step}: a row moved ${r.moved.by} px for ${r.moved.scrolled} px scrolled`);
      }
      for (const x of r.seen) {
        const had = byIndex.get(x.index);
        assert.ok(!had || had.id === x.id, `row ${x.index} was ${had?.id}, then ${x.id}`);
        byIndex.set(x.index, x);
      }
      ref = r.nextRef;
      if (r.atEnd) break;
    }
    const n = await rowCount(page);
    assert.equal(byIndex.size, n, 'every row is rendered once scrolled to, and no other');
    assert.deepEqual(await page.evaluate(() => window.__errors), [], 'no window errors');
    await page.evaluate(() => window.scrollTo(0, 0));
    return Array.from({ length: n }, (_, i) => {
      assert.ok(byIndex.has(i + 2), `row ${i + 2} was never rendered`);
      return byIndex.get(i + 2);
    });
  };
  // In the page, for `allRows` and the tests: window errors (a ResizeObserver loop among
  // them) kept; `__settle()` waits until the page stops changing (the scroll's re-render,
  // the measuring after it and any correction of the position settle within a few
  // frames); `__cover()` is the part of the table in view (`need`) and the span of the
  // rendered rows (`have`), in viewport px.
  const watchErrors = (page) => page.addInitScript(() => {
    window.__errors = [];
    window.addEventListener('error', (e) => window.__errors.push(e.message));
    const rowsNow = () => [...document.querySelectorAll('[data-testid^="row-"]')];
    window.__settle = async () => {
      const state = () => `${window.scrollY}|${window.innerWidth}|${rowsNow().map((tr) => tr.dataset.client + tr.getBoundingClientRect().top).join()}`;
      let last = '';
      for (let i = 0; i < 60; i++) {
        await new Promise((r) => requestAnimationFrame(r));
        const now = state();
        if (now === last) return;
        last = now;
      }
    };
    window.__cover = () => {
      const trs = rowsNow();
      const tb = document.querySelector('[data-testid="fleet-table"] tbody').getBoundingClientRect();
      const need = [Math.max(0, tb.top), Math.min(window.innerHeight, tb.bottom)];
      const have = trs.length ? [trs[0].getBoundingClientRect().top, trs.at(-1).getBoundingClientRect().bottom] : need;
      return { need, have };
    };
  });
  const assertCovered = async (page, what) => {
    const { need, have } = await page.evaluate(async () => { await window.__settle(); return window.__cover(); });
    assert.ok(have[0] <= need[0] + 1 && have[1] >= need[1] - 1, `${what}: rows cover ${have.map(Math.round)} of the table's ${need.map(Math.round)} in view`);
  };

  await test('fleet totals: today, month, profit in USD and PLN, credits, projection', async (page) => {
    await page.goto(base);
    await page.getByTestId('fleet-totals').waitFor();
    const today = await text(page, '[data-testid="totals-today-client"]');
    assert.match(today, /\$25\.00/);
    assert.match(today, /100,00\s*zł/);
    assert.match(await text(page, '[data-testid="totals-today-profit"]'), /\$5\.77[\s\S]*23,08\s*zł/);
    assert.match(await text(page, '[data-testid="totals-month-openrouter"]'), /\$495\.36[\s\S]*1\s981,46\s*zł/);
    assert.equal(await text(page, '[data-testid="credits-remaining"]'), '$487.56');
    assert.equal(await text(page, '[data-testid="projection-value"]'), '$2,790.55');
    assert.match(await text(page, '[data-testid="projection-limit"]'), /276\.3% of \$1,010\.00 .*will exceed on \d{4}-\d\d-12/);
    const rate = await text(page, '[data-testid="totals-rate"]');
    assert.match(rate, /NBP table C ask 4\.0000 \(table 236\/C\/NBP\/2026/);
    assert.doesNotMatch(rate, /STALE/);
    assert.match(rate, /2 of 3 clients counted; without current numbers: gone/);
    assert.ok(!(await page.getByTestId('sort-select').isVisible()), 'wide windows sort by the column headers');
    await page.screenshot({ path: join(out, 'overview-fleet.png') });
  });

  await test('fleet totals: no management key, stale rate', async (page) => {
    await page.goto(base + '?scenario=no-credits');
    await page.getByTestId('credits-why').waitFor();
    assert.match(await text(page, '[data-testid="credits-why"]'), /no OpenRouter management key in the keychain; set it with `maictl keys set-management`/);
    await page.goto(base + '?scenario=totals-stale');
    await page.getByTestId('totals-rate').waitFor();
    assert.match(await text(page, '[data-testid="totals-rate"]'), /STALE: last known rate, NBP unreachable/);
    await page.screenshot({ path: join(out, 'overview-stale-rate.png') });
  });

  await test('fleet totals: no PLN rate shows USD only', async (page) => {
    await page.goto(base + '?scenario=no-pln');
    await page.getByTestId('totals-rate').waitFor();
    assert.match(await text(page, '[data-testid="totals-rate"]'), /PLN unavailable: NBP did not answer within 8 s/);
    assert.doesNotMatch(await text(page, '[data-testid="totals-month"]'), /zł/);
  });

  await test('fleet rows before NBP and OpenRouter answer; the totals fill in at the next ask', async (page) => {
    await page.goto(base + '?scenario=outside-pending');
    await page.getByTestId('totals-rate-pending').waitFor();
    assert.ok(await page.getByTestId('row-acme').isVisible(), 'the rows are shown without the outside answers');
    assert.match(await text(page, '[data-testid="credits-why"]'), /asking OpenRouter/);
    assert.doesNotMatch(await text(page, '[data-testid="totals-month"]'), /zł/);
    await page.screenshot({ path: join(out, 'overview-outside-pending.png') });
    // The view asks again shortly (not in 30 s): the rate and the credits are in.
    await page.getByTestId('credits-remaining').waitFor({ timeout: 5000 });
    assert.match(await text(page, '[data-testid="totals-rate"]'), /NBP table C ask 4\.0000/);
    assert.match(await text(page, '[data-testid="totals-month"]'), /zł/);
  });

  await test('fleet totals and table, narrow window', async (page) => {
    await page.goto(base + '?scenario=no-credits');
    await page.getByTestId('row-acme').waitFor();
    const box = await page.getByTestId('fleet-totals').boundingBox();
    assert.ok(box.width <= 420, `the totals fit the window (${box.width}px)`);
    assert.match(await text(page, '[data-testid="row-acme"] [data-testid="projection"]'), /\$1,395\.28/);
    await page.screenshot({ path: join(out, 'overview-fleet-narrow.png'), fullPage: true });
  }, narrow);

  await test('projection per client: month end, limit and the day it is exceeded', async (page) => {
    await page.goto(base);
    await page.getByTestId('row-acme').waitFor();
    const p = await text(page, '[data-testid="row-acme"] [data-testid="projection"]');
    assert.match(p, /\$1,395\.28/);
    assert.match(p, /exceeds on 2026-12-12/);
  });

  await test('fixed columns: the longest state badges wrap between words inside their cells at 1280, 1000, 1450 and 1600 px', async (page) => {
    await page.goto(base + '?scenario=widest-states');
    await page.getByTestId('row-restarting-client').waitFor();
    const overflowing = () => page.evaluate(() => [...document.querySelectorAll('[data-testid="fleet-table"] td .badge')]
      .filter((b) => b.getBoundingClientRect().right > b.closest('td').getBoundingClientRect().right + 0.5)
      .map((b) => b.textContent.trim()));
    // Words stay whole: a one-word badge ("unreachable") is one line, as high as the lowest badge.
    const brokenWords = () => page.evaluate(() => {
      const badges = [...document.querySelectorAll('[data-testid="fleet-table"] td .badge')];
      const line = Math.min(...badges.map((b) => b.getBoundingClientRect().height));
      return badges.filter((b) => !/\s/.test(b.textContent.trim()) && b.getBoundingClientRect().height > line + 0.5).map((b) => b.textContent.trim());
    });
    assert.match(await text(page, '[data-testid="row-restarting-client"]'), /restarting · unhealthy[\s\S]*account out of credits/);
    assert.deepEqual(await overflowing(), []);
    assert.deepEqual(await brokenWords(), []);
    await page.screenshot({ path: join(out, 'overview-widest-states.png') });
    for (const width of [1000, 1450, 1600]) {
      await page.setViewportSize({ width, height: 800 });
      assert.deepEqual(await overflowing(), [], `at ${width} px`);
      assert.deepEqual(await brokenWords(), [], `at ${width} px`);
    }
  });

  await test('200 rows: only those in view are rendered; scrolled through, each once; sort by exact decimals both ways, stable', async (page) => {
    await watchErrors(page);
    await page.goto(base + '?scenario=fleet-200');
    await page.getByTestId('row-client-001').waitFor();
    assert.equal(await text(page, '[data-testid="fleet-count"]'), '200 of 200 clients');
    assert.equal(await rowCount(page), 200);
    const rendered = await page.locator('[data-testid^="row-"]').count();
    assert.ok(rendered >= 8 && rendered <= 40, `rendered ${rendered} of 200 rows`);
    assert.equal(await page.getByTestId('rows-before').count(), 0);
    assert.ok(await page.getByTestId('rows-after').isVisible());
    assert.deepEqual((await allRows(page)).map((r) => r.id), Array.from({ length: 200 }, (_, i) => `client-${String(i + 1).padStart(3, '0')}`));
    // Scrolled to the bottom: the last rows, with a spacer above instead of the first.
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.getByTestId('row-client-200').waitFor();
    assert.equal(await page.getByTestId('row-client-001').count(), 0);
    await page.screenshot({ path: join(out, 'overview-fleet-200-bottom.png') });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByTestId('row-client-001').waitFor();
    await page.getByTestId('sort-today').click();
    assert.equal(await page.locator('th[aria-sort="ascending"]').count(), 1);
    let costs = (await allRows(page)).map((r) => r.today);
    assert.equal(costs.length, 200);
    // $0.00 before $0.000864 before $0.01...: decimals, not text or float rounding.
    assert.deepEqual(costs.slice(0, 2), ['$0.00', '$0.000864']);
    for (let i = 1; i < costs.length; i++) assert.ok(micros(costs[i - 1]) <= micros(costs[i]), `${costs[i - 1]} <= ${costs[i]}`);
    await page.getByTestId('sort-today').click();
    assert.equal(await page.locator('th[aria-sort="descending"]').count(), 1);
    costs = (await allRows(page)).map((r) => r.today);
    for (let i = 1; i < costs.length; i++) assert.ok(micros(costs[i - 1]) >= micros(costs[i]), `${costs[i - 1]} >= ${costs[i]}`);
    assert.deepEqual(costs.slice(-2), ['$0.000864', '$0.00']);
    // Ties keep their order: every row has the same key state, so sorting by it is the identity.
    await page.getByTestId('sort-key').click();
    const ids = (await allRows(page)).map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(ids[0], 'client-001');
    await page.getByTestId('sort-client').click();
    await page.getByTestId('sort-client').click();
    assert.equal((await rowIds(page))[0], 'client-200');
    await page.screenshot({ path: join(out, 'overview-fleet-200-sorted.png') });
  });

  await test('200 rows: filter by host, state and alerts; search; clear', async (page) => {
    await watchErrors(page);
    await page.goto(base + '?scenario=fleet-200');
    await page.getByTestId('row-client-001').waitFor();
    await page.getByTestId('filter-host').selectOption('waw1');
    assert.equal(await rowCount(page), 67);
    assert.equal(await text(page, '[data-testid="fleet-count"]'), '67 of 200 clients');
    assert.equal((await allRows(page)).length, 67);
    await page.getByTestId('filter-alerts').selectOption('critical');
    assert.deepEqual(await rowIds(page), ['client-011', 'client-041', 'client-071', 'client-101', 'client-131', 'client-161', 'client-191']);
    await page.getByTestId('filter-clear').click();
    assert.equal(await rowCount(page), 200);
    await page.getByTestId('filter-state').selectOption('exited');
    assert.equal(await rowCount(page), 8);
    assert.equal(await page.locator('[data-testid^="row-"]').count(), 8);
    await page.getByTestId('filter-state').selectOption('');
    await page.getByTestId('fleet-search').fill('client-19');
    assert.deepEqual(await rowIds(page), Array.from({ length: 10 }, (_, i) => `client-19${i}`));
    await page.getByTestId('fleet-search').fill('FIRMA 42 ');
    assert.deepEqual(await rowIds(page), ['client-042']);
    await page.getByTestId('fleet-search').fill('nobody');
    assert.equal(await text(page, '[data-testid="fleet-empty"]'), 'No client matches the filters.');
    await page.screenshot({ path: join(out, 'overview-fleet-200-no-match.png') });
    // Sorting applies to what the filter leaves.
    await page.getByTestId('fleet-search').fill('');
    await page.getByTestId('filter-host').selectOption('fra1');
    await page.getByTestId('sort-client').click();
    await page.getByTestId('sort-client').click();
    const ids = (await allRows(page)).map((r) => r.id);
    assert.equal(ids.length, 66);
    assert.equal(ids[0], 'client-198');
    await page.screenshot({ path: join(out, 'overview-fleet-200-filtered.png') });
  });

  await test('200 rows, narrow window: cards rendered as scrolled to; filter, and sort without column headers', async (page) => {
    await watchErrors(page);
    await page.goto(base + '?scenario=fleet-200');
    await page.getByTestId('row-client-001').waitFor();
    assert.ok(await page.getByTestId('sort-select').isVisible());
    assert.ok((await page.locator('[data-testid^="row-"]').count()) < 30, 'cards are rendered as they come into view');
    await page.getByTestId('sort-select').selectOption('month');
    await page.getByTestId('sort-dir').click();
    const months = (await allRows(page)).map((r) => r.month);
    assert.equal(months.length, 200);
    for (let i = 1; i < months.length; i++) assert.ok(micros(months[i - 1]) >= micros(months[i]), `${months[i - 1]} >= ${months[i]}`);
    await page.getByTestId('filter-alerts').selectOption('warning');
    await page.screenshot({ path: join(out, 'overview-fleet-200-narrow.png') });
  }, narrow);

  await test('200 rows: scrolled halfway, the window follows the window being narrowed to cards and widened again', async (page) => {
    await watchErrors(page);
    await page.goto(base + '?scenario=fleet-200');
    await page.getByTestId('row-client-001').waitFor();
    await page.evaluate(() => window.scrollTo(0, 6000));
    await assertCovered(page, 'wide, scrolled');
    // Cards are ~7 times as tall as rows: heights measured wide would leave the view blank.
    await page.setViewportSize(narrow);
    await assertCovered(page, 'narrowed');
    await page.evaluate(() => window.scrollBy(0, 3000));
    await assertCovered(page, 'narrow, scrolled');
    await page.setViewportSize({ width: 1280, height: 800 });
    await assertCovered(page, 'widened again');
    assert.ok((await page.locator('[data-testid^="row-"]').count()) <= 40);
    assert.deepEqual(await page.evaluate(() => window.__errors), []);
  });

  const openClient = async (page, scenario = '') => {
    await page.goto(base + scenario);
    await page.getByTestId('row-acme').waitFor();
    await page.locator('[data-testid="row-acme"] button', { hasText: 'Open' }).click();
    await page.getByTestId('usage-export-toggle').click();
    await page.getByTestId('usage-export').waitFor();
  };

  await test('usage export: progress while it runs, then the file and its sums', async (page) => {
    await openClient(page);
    assert.match(await page.getByTestId('ux-path').getAttribute('placeholder'), /^~\/mai-usage\/acme-\d{4}-\d\d-events\.csv$/);
    await page.getByTestId('ux-month').fill('2026-11');
    await page.getByTestId('ux-run').click();
    await page.getByTestId('ux-progress').filter({ hasText: '1000/2400 rows' }).waitFor();
    assert.equal(await page.getByTestId('ux-run').innerText(), 'Exporting…');
    await page.screenshot({ path: join(out, 'overview-export-progress.png') });
    await page.evaluate(() => window.__releaseUsageExport());
    await page.getByTestId('ux-result').waitFor();
    const r = await text(page, '[data-testid="ux-result"]');
    assert.match(r, /2400 rows written to \/home\/anna\/mai-usage\/acme-2026-11-events\.csv/);
    assert.match(r, /raw \$247\.68, client \$321\.99/);
    const call = await page.evaluate(() => window.__calls.find((c) => c.cmd === 'usage_export').args.request);
    assert.deepEqual(call, { client: 'acme', month: '2026-11', kind: 'events', format: 'csv', path: null });
    await page.screenshot({ path: join(out, 'overview-export-done.png') });
  });

  await test('usage export: daily JSON to a typed path; a failure says why', async (page) => {
    await openClient(page);
    await page.getByTestId('ux-kind').selectOption('daily');
    await page.getByTestId('ux-format').selectOption('json');
    await page.getByTestId('ux-path').fill('/tmp/acme.json');
    await page.getByTestId('ux-run').click();
    await page.getByTestId('ux-progress').filter({ hasText: '31/31 rows' }).waitFor();
    await page.evaluate(() => window.__releaseUsageExport());
    await page.getByTestId('ux-result').filter({ hasText: '31 rows written to /tmp/acme.json' }).waitFor();
    await openClient(page, '?scenario=usage-export-fail');
    await page.getByTestId('ux-path').fill('/root/x.csv');
    await page.getByTestId('ux-run').click();
    await page.getByTestId('ux-error').waitFor();
    assert.match(await text(page, '[data-testid="ux-error"]'), /writing \/root\/x\.csv failed: Permission denied .*check the path/);
  });

  await test('usage export, narrow window', async (page) => {
    await openClient(page);
    await page.screenshot({ path: join(out, 'overview-export-narrow.png'), fullPage: true });
  }, narrow);
}
