/**
 * The page when the session ends under it, in a real browser: a submission or a cancel it stopped says so, with the
 * login shown and Sign out hidden; a sign-in refused for another reason than the token says what happened; a
 * cancel the service refuses shows its answer; and after signing in again every job row is asked for, so a job the
 * service forgot (a restart that also ended the session) reads "unknown", as docs/server.md promises.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobView } from '../../ts/server/jobs/types.js';
import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers.js';
import { StartedJobsRunner } from './startedJobsRunner.js';

if (!chromiumPath) console.warn(NO_BROWSER);

const TOKEN = TEST_TOKEN;

/** Jobs start when submitted and run until the test ends or forgets them. */
class ScriptedRunner extends StartedJobsRunner {
  constructor() {
    super('scripted');
  }
  override async cancel(id: string): Promise<JobView | undefined> {
    this.board.finish(id, 'cancelled', { error: { name: 'CancelledError', message: 'cancelled' } });
    return this.board.get(id);
  }
  /** As a restart does: the service no longer knows the job. */
  forget(id: string): void {
    (this.board as unknown as { jobs: Map<string, unknown> }).jobs.delete(id);
  }
}

describe.skipIf(!chromiumPath)('the page when its session ends', { timeout: 60_000 }, () => {
  let s: TestServer;
  let runner: ScriptedRunner;
  let browser: Browser;
  beforeAll(async () => {
    runner = new ScriptedRunner();
    s = await startTestServer({ token: TOKEN, runner });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  async function signedIn(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${s.url}/`);
    await page.waitForSelector('#login.shown');
    await page.fill('#token', TOKEN);
    await page.click('#login-form button');
    await page.waitForSelector('#sign-out:not([hidden])');
    return { context, page };
  }

  /** Submits the form's body (a demo job) and returns the new job's id; its event stream is refused (a broken stream). */
  async function submitWithoutStream(page: Page): Promise<string> {
    await page.route('**/events', (route) => route.abort());
    await page.click('#submit');
    await page.waitForFunction(() => /^submitted /.test(document.getElementById('submitted')?.textContent ?? ''));
    return (await page.textContent('#submitted'))!.replace('submitted ', '');
  }

  // (before: the login with no word that the job was not submitted, and Sign out still shown)
  it('signed out in another tab: a submission says it was not submitted, shows the login and hides Sign out', async () => {
    const { context, page } = await signedIn();
    await context.request.delete(`${s.url}/v1/session`);
    await page.click('#submit');
    await page.waitForSelector('#login.shown');
    expect(await page.textContent('#login-problems')).toMatch(/^The job was not submitted\. The session has ended/);
    expect(await page.textContent('#problems')).toMatch(/^Not submitted: /);
    expect(await page.isHidden('#sign-out')).toBe(true);
    await context.close();
  });

  // (before: "That token is not valid." for any answer but 204)
  it('a sign-in refused for another reason than the token says what happened', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.route('**/v1/session', (route) =>
      route.request().method() === 'POST' ? route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'Service Unavailable', message: 'POST /v1/session: the service is shutting down' }) }) : route.continue(),
    );
    await page.goto(`${s.url}/`);
    await page.waitForSelector('#login.shown');
    await page.fill('#token', TOKEN);
    await page.click('#login-form button');
    await page.waitForFunction(() => /^Could not sign in/.test(document.getElementById('login-problems')?.textContent ?? ''));
    expect(await page.textContent('#login-problems')).toBe('Could not sign in (HTTP 503): POST /v1/session: the service is shutting down');
    await context.close();
  });

  // (before: the DELETE's answer was ignored)
  it("Cancel shows the service's answer when it is not a cancel (409: the job had ended)", async () => {
    const { context, page } = await signedIn();
    const id = await submitWithoutStream(page);
    await page.waitForSelector(`tr[data-id="${id}"] button.cancel`);
    runner.board.finish(id, 'done', { result: {} });
    await page.click(`tr[data-id="${id}"] button.cancel`);
    await page.waitForFunction(() => /^Cancel /.test(document.getElementById('problems')?.textContent ?? ''));
    expect(await page.textContent('#problems')).toMatch(new RegExp(`^Cancel ${id}: .*`));
    await context.close();
  });

  // (before: a 401 while re-checking showed the login and stopped; after sign-in only listed jobs were added, so the
  // forgotten job's row stayed "running" for ever)
  it('a job the service forgot while the session also ended reads unknown once signed in again', async () => {
    const { context, page } = await signedIn();
    const id = await submitWithoutStream(page);
    runner.forget(id);
    await context.request.delete(`${s.url}/v1/session`);
    await page.waitForSelector('#login.shown', { timeout: 15_000 });
    expect(await page.isHidden('#sign-out')).toBe(true);
    await page.fill('#token', TOKEN);
    await page.click('#login-form button');
    await page.waitForFunction((jobId) => document.querySelector(`tr[data-id="${jobId}"] td:nth-child(3)`)?.textContent === 'unknown', id, { timeout: 15_000 });
    await context.close();
  });
});
