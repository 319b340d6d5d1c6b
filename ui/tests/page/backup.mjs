// Page tests of a client's Backups panel (issue 14): the last backup and the list, Back up
// now with its progress, Restore with its confirmation (and the tracker's refusal), the
// rebuild report, and the panel without a [backup] folder; 1280x800 and a narrow window.
import assert from 'node:assert/strict';
import { join } from 'node:path';

export default async function backupTests({ test, base, out, text }) {
  const open = async (page, scenario = '') => {
    await page.goto(base + (scenario ? `?scenario=${scenario}` : ''));
    await page.getByTestId('nav-client').click();
    await page.getByTestId('backup-list').waitFor();
    await page.getByTestId('backups-panel').scrollIntoViewIfNeeded();
  };

  await test('backups: last backup, list, back up now with progress', async (page) => {
    await open(page);
    assert.match(await text(page, '[data-testid="backup-last"]'), /1204 events, \$312\.42/);
    assert.match(await text(page, '[data-testid="backup-last"]'), /every 1 day\(s\), keeping 14/);
    assert.equal(await page.locator('[data-testid="backup-list"] tbody tr').count(), 2);
    await page.screenshot({ path: join(out, 'backups.png'), fullPage: true });
    await page.getByTestId('backup-now').click();
    await page.getByTestId('backup-message').waitFor();
    assert.match(await text(page, '[data-testid="backup-message"]'), /1230 events, .*checksum verified/);
    assert.equal(await page.locator('[data-testid="backup-list"] tbody tr').count(), 3);
    assert.match(await text(page, '[data-testid="backup-last"]'), /1230 events/);
    const calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    assert.ok(calls.includes('backup_now'));
    await page.screenshot({ path: join(out, 'backups-after-backup.png'), fullPage: true });
  });

  await test('backups: restore asks first, then restores the chosen file', async (page) => {
    await open(page);
    await page.getByTestId('restore-1').click();
    await page.getByTestId('restore-dialog').waitFor();
    assert.match(await text(page, '[data-testid="restore-dialog"]'), /1150 events/);
    assert.match(await text(page, '[data-testid="restore-dialog"]'), /Only a new tracker/);
    await page.screenshot({ path: join(out, 'backups-restore-confirm.png') });
    // Cancel sends nothing.
    await page.getByTestId('restore-cancel').click();
    let calls = await page.evaluate(() => window.__calls.map((c) => c.cmd));
    assert.ok(!calls.includes('backup_restore'));
    await page.getByTestId('restore-1').click();
    await page.getByTestId('restore-confirm').click();
    await page.getByTestId('backup-message').waitFor();
    assert.match(await text(page, '[data-testid="backup-message"]'),
      /Restored 1240 events onto the tracker of acme \(1150 from the backup, 90 from the console's cache\)/);
    calls = await page.evaluate(() => window.__calls.filter((c) => c.cmd === 'backup_restore').map((c) => [c.args.file, c.args.withCache]));
    assert.deepEqual(calls, [['/home/anna/mai-backups/acme/acme-20261205T020000Z.db', true]]);
  });

  await test('backups: a lost ledger shows as an empty tracker against the cache, restored with the cache', async (page) => {
    await open(page, 'backup-lost');
    assert.match(await text(page, '[data-testid="backup-ledger"]'), /on the tracker: 0 events, \$0\.00; in the console's cache: 1240 events, \$320\.50/);
    assert.match(await text(page, '[data-testid="backup-ledger-behind"]'), /ledger is empty/);
    await page.getByTestId('restore-0').click();
    assert.ok(await page.getByTestId('restore-with-cache').isChecked());
    await page.getByTestId('restore-with-cache').uncheck();
    await page.getByTestId('restore-confirm').click();
    await page.getByTestId('backup-message').waitFor();
    assert.match(await text(page, '[data-testid="backup-message"]'), /^Restored 1204 events onto the tracker of acme$/);
    const args = await page.evaluate(() => window.__calls.find((c) => c.cmd === 'backup_restore').args);
    assert.equal(args.withCache, false);
    await page.getByTestId('backup-ledger-behind').waitFor({ state: 'detached' });
  });

  await test('backups: a ledger lost after a backup: the next reload drops the "Backed up" message and warns', async (page) => {
    await open(page, 'backup-lost-later');
    await page.getByTestId('backup-now').click();
    await page.getByTestId('backup-message').waitFor();
    assert.equal(await page.getByTestId('backup-ledger-behind').count(), 0);
    await page.evaluate(() => { window.__ledgerLost = true; });
    await page.getByTestId('dash-refresh').click();
    await page.getByTestId('backup-ledger-behind').waitFor();
    await page.getByTestId('backup-message').waitFor({ state: 'detached' });
    assert.match(await text(page, '[data-testid="backup-ledger"]'), /on the tracker: 0 events/);
  });

  await test('backups: a tracker in use refuses the restore, and says what to do', async (page) => {
    await open(page, 'backup-refused');
    await page.getByTestId('restore-0').click();
    await page.getByTestId('restore-confirm').click();
    await page.getByTestId('backup-error').waitFor();
    assert.match(await text(page, '[data-testid="backup-error"]'), /already holds 1204 events.*deploy a new tracker/);
    await page.getByTestId('backups-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(out, 'backups-restore-refused.png'), fullPage: true });
  });

  await test('backups: rebuild report lists the days and what was not recoverable', async (page) => {
    await open(page);
    await page.getByTestId('rebuild').locator('summary').click();
    await page.getByTestId('rebuild-month').fill('2026-12');
    await page.getByTestId('rebuild-run').click();
    await page.getByTestId('rebuild-report').waitFor();
    assert.match(await text(page, '[data-testid="rebuild-unrecoverable"]'), /1 day\(s\) not recoverable/);
    assert.match(await text(page, '[data-testid="rebuild-day-2026-12-01"]'), /not recoverable/);
    assert.match(await text(page, '[data-testid="rebuild-day-2026-12-03"]'), /\/activity \(no users\).*\$9\.88 \(37 req\.\)/s);
    assert.equal(await page.getByTestId('rebuild-day-2026-12-04').count(), 0, 'an empty checked day is not listed');
    const args = await page.evaluate(() => window.__calls.find((c) => c.cmd === 'backup_rebuild').args);
    assert.equal(args.month, '2026-12');
    await page.getByTestId('rebuild-report').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(out, 'backups-rebuild.png'), fullPage: true });
  });

  await test('backups: without a [backup] folder the panel says how to set one', async (page) => {
    await page.goto(base + '?scenario=backup-none');
    await page.getByTestId('nav-client').click();
    await page.getByTestId('backup-unconfigured').waitFor();
    assert.match(await text(page, '[data-testid="backup-unconfigured"]'), /\[backup\]/);
    assert.equal(await page.getByTestId('backup-now').count(), 0);
  });

  await test('backups narrow window: the list scrolls in its box, not the page', async (page) => {
    await open(page);
    await page.getByTestId('rebuild').locator('summary').click();
    await page.getByTestId('rebuild-run').click();
    await page.getByTestId('rebuild-report').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page overflows by ${overflow}px`);
    await page.getByTestId('backups-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(out, 'backups-narrow.png'), fullPage: true });
  }, { width: 420, height: 800 });
}
