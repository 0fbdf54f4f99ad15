/**
 * The page on a service with a token, in a real browser: it asks for the token, signs in (the cookie it gets is a
 * session id with an expiry, not the token), lists the jobs, and signs out (the session ends: the login again).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers.js';

if (!chromiumPath) console.warn(NO_BROWSER);

const TOKEN = TEST_TOKEN;

describe.skipIf(!chromiumPath)('the web page signs in and out', () => {
  let s: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    s = await startTestServer({ token: TOKEN });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('signs in with the token (a session cookie that is not the token), then signs out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${s.url}/`);
    await page.waitForSelector('#login.shown');
    expect(await page.isHidden('#sign-out')).toBe(true);

    await page.fill('#token', 'wrong');
    await page.click('#login-form button');
    await page.waitForFunction(() => document.getElementById('login-problems')?.textContent === 'That token is not valid.');

    await page.fill('#token', TOKEN);
    await page.click('#login-form button');
    await page.waitForSelector('#login:not(.shown)', { state: 'attached' });
    await page.waitForSelector('#sign-out:not([hidden])');
    const [cookie] = await context.cookies();
    expect(cookie.name).toBe(`brainlatent_session_${new URL(s.url).port}`);
    expect(cookie.value).not.toContain(TOKEN);
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    // Max-Age 12 h: an expiry about 12 h from now (a browser keeps it as a date)
    expect(cookie.expires - Date.now() / 1000).toBeGreaterThan(12 * 3600 - 600);
    expect(cookie.expires - Date.now() / 1000).toBeLessThanOrEqual(12 * 3600 + 1);
    // the page's own requests go through with the session
    expect(await page.evaluate(() => fetch('v1/jobs').then((r) => r.status))).toBe(200);

    await page.click('#sign-out');
    await page.waitForSelector('#login.shown');
    expect(await context.cookies()).toEqual([]);
    // the old session is gone on the service too
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: `${cookie.name}=${cookie.value}` })).status).toBe(401);
    await context.close();
  });
});
