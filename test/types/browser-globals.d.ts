// The browser tests' page.evaluate callbacks run inside Chromium and name a few DOM globals. The
// typecheck uses Node's library without "DOM" (DOM's fetch types clash with Node's), so those
// names are declared here, loosely: the code inside the callbacks is checked by running it.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;
declare const document: any;
declare const MutationObserver: any;
declare const requestAnimationFrame: any;
interface HTMLElement {
  [key: string]: any;
  dataset: any;
  textContent: string | null;
}
interface HTMLInputElement extends HTMLElement {
  value: string;
}
interface HTMLImageElement extends HTMLElement {
  naturalWidth: number;
  naturalHeight: number;
}
