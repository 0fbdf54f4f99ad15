/**
 * A real browser for the report tests: Debian's chromium driven by playwright-core (which never downloads
 * one). Reports are opened from file://, as a user opens them. Tests skip, saying so, when no chromium is
 * installed (scripts/setup.sh installs it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Browser, Page } from 'playwright-core';

const CANDIDATES = [process.env.BRAINLATENT_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The chromium executable, or null. */
export const chromiumPath: string | null = CANDIDATES.find((p): p is string => !!p && existsSync(p)) ?? null;

export const NO_BROWSER = 'no chromium found (apt-get install chromium, or set BRAINLATENT_CHROMIUM); browser checks skipped';

/** Where screenshots go: build/artifacts/ (git-ignored), kept after the run to be looked at. */
export const ARTIFACTS = resolve('build', 'artifacts');

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // Playwright's defaults (new headless, --no-sandbox, SwiftShader WebGL) plus the quiet flags the project uses.
  return chromium.launch({
    executablePath: chromiumPath!,
    headless: true,
    args: ['--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface OpenedPage {
  page: Page;
  /** Console errors, page errors and failed requests seen so far. */
  problems: string[];
}

/** Opens a local file as file:// in a fresh page of the given width, recording every problem. */
export async function openReport(browser: Browser, file: string, width = 1400): Promise<OpenedPage> {
  const page = await browser.newPage({ viewport: { width, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, problems };
}

/**
 * Scrolls every <img> of `page` (or those `selector` finds) into view, as a reader scrolling through it does, and waits
 * until each has loaded or failed: a report's gallery images load lazily, only when in view.
 */
export async function loadImages(page: Page, selector = 'img'): Promise<void> {
  await page.$$eval(selector, async (imgs) => {
    for (const i of imgs) {
      i.scrollIntoView();
      await new Promise((r) => requestAnimationFrame(() => r(undefined)));
    }
  });
  await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].every((i) => (i as HTMLImageElement).complete), selector);
}

/** Every <img>, each scrolled into view first (loadImages): its src and naturalWidth (0 when it did not load). */
export async function imageStates(page: Page): Promise<{ src: string; width: number }[]> {
  await loadImages(page);
  return page.$$eval('img', (imgs) => imgs.map((i) => ({ src: i.getAttribute('src') ?? '', width: (i as HTMLImageElement).naturalWidth })));
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
