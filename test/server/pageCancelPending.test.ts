/**
 * The page shows a cancelled `--redis` job whose batch's cancel waits for Redis (review s43): the row says so instead
 * of a stage, offers no second Cancel (the service already retries it), and the job's detail gives the service's
 * message. Before, such a job read as a plain running job with a Cancel button that changed nothing.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobView } from '../../ts/server/jobs/types.js';
import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { startTestServer, type TestServer } from './helpers.js';
import { StartedJobsRunner } from './startedJobsRunner.js';

if (!chromiumPath) console.warn(NO_BROWSER);

const PENDING = 'cancelled, but its batch b-1 is not cancelled in Redis yet: Redis did not answer; the service tries again until it does';

/** A cancel leaves the job running with its batch's cancel pending, as the service does while Redis does not answer. */
class PendingRunner extends StartedJobsRunner {
  constructor() {
    super('pending');
  }
  override async cancel(id: string): Promise<JobView | undefined> {
    this.board.cancelPending(id, PENDING);
    return this.board.get(id);
  }
}

describe.skipIf(!chromiumPath)('the page and a cancel that waits for Redis', { timeout: 60_000 }, () => {
  let s: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    s = await startTestServer({ runner: new PendingRunner() });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('reads "the batch cancel waits for Redis", with no Cancel button, and the message in the detail', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${s.url}/`);
    await page.click('#submit');
    await page.waitForFunction(() => /^submitted /.test(document.getElementById('submitted')?.textContent ?? ''));
    const id = (await page.textContent('#submitted'))!.replace('submitted ', '');
    const row = page.locator('#jobs tr', { hasText: id });
    await row.locator('button.cancel').click();
    await row.locator('td', { hasText: 'cancelled: the batch cancel waits for Redis' }).waitFor();
    expect(await row.locator('td.state').textContent()).toBe('running');
    expect(await row.locator('button.cancel').count()).toBe(0);
    await row.click();
    expect(await page.textContent('#detail-cancel-pending')).toBe(PENDING);
    await context.close();
  });
});
