// Benchmark (issue 14: "200 rows stay responsive"): the fleet view of the built UI with
// 200 clients (the page tests' `fleet-200` scenario, mockIPC) in headless Chromium. Times,
// inside the page, from the user's action to the second animation frame after it (the
// updated table has been painted): the first render, sorting by today's cost both ways,
// a search keystroke and a filter. Prints min / median / max over RUNS. Figures only.
//   deploy/bench/fleet-table.sh            (builds the harness, then runs this)
import { launchChromium, serveHarness } from '../page/serve.mjs';

const RUNS = Number(process.env.RUNS ?? 15);
const server = await serveHarness();
const url = `${server.base}?scenario=fleet-200`;
const browser = await launchChromium();

// Runs `act` in the page and resolves after two animation frames: the frame that
// applied the change and the one after it was painted.
const timed = (page, act) =>
  page.evaluate(async (src) => {
    const t0 = performance.now();
    new Function(src)();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
  }, act);

const samples = { 'first render (200 rows)': [], 'sort by today, ascending': [], 'sort by today, descending': [], 'search keystroke': [], 'filter by host': [] };
for (let i = 0; i < RUNS; i++) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  // From navigation start to the table painted with all 200 clients counted (only the
  // rows in view are rendered: lib/rowWindow.ts).
  await page.getByTestId('row-client-001').waitFor();
  await page.locator('[data-testid=fleet-count]', { hasText: '200 of 200' }).waitFor();
  samples['first render (200 rows)'].push(await page.evaluate(async () => {
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now();
  }));
  samples['sort by today, ascending'].push(await timed(page, "document.querySelector('[data-testid=sort-today]').click()"));
  samples['sort by today, descending'].push(await timed(page, "document.querySelector('[data-testid=sort-today]').click()"));
  samples['search keystroke'].push(await timed(page, `
    const el = document.querySelector('[data-testid=fleet-search]');
    el.value = 'client-1'; el.dispatchEvent(new Event('input', { bubbles: true }));`));
  samples['filter by host'].push(await timed(page, `
    const el = document.querySelector('[data-testid=filter-host]');
    el.value = 'waw1'; el.dispatchEvent(new Event('change', { bubbles: true }));`));
  await page.close();
}
await browser.close();
server.close();
const ms = (x) => x.toFixed(1).padStart(7);
console.log(`fleet table, 200 rows, ${RUNS} runs (ms: min / median / max)`);
for (const [k, v] of Object.entries(samples)) {
  v.sort((a, b) => a - b);
  console.log(`${k.padEnd(28)}${ms(v[0])} ${ms(v[v.length >> 1])} ${ms(v[v.length - 1])}`);
}
