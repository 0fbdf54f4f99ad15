/**
 * The service's web page: one self-contained HTML document (no external assets, relative URLs so it works under
 * any prefix). It lists the jobs with live progress over Server-Sent Events, shows a finished run's metrics,
 * report and gallery, submits a config (with a demo-world example ready to send), and asks for the token when
 * the service has one. It holds no data itself: everything comes from the API after login.
 */
import { PAGE_SCRIPT } from './pageScript.js';

const STYLE = `
:root { font-family: system-ui, sans-serif; color: #1d2430; background: #f6f7f9; }
body { margin: 0; }
header { background: #1d2430; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header span { opacity: .7; font-size: 13px; }
header button { margin-left: auto; }
main { display: grid; grid-template-columns: minmax(420px, 1fr) minmax(380px, 1fr); gap: 16px; padding: 16px 20px; }
/* one column below the two columns' minimum widths (a half-screen window, a tablet): nothing off the side */
@media (max-width: 880px) { main { grid-template-columns: minmax(0, 1fr); } header { flex-wrap: wrap; } }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 14px; }
h2 { font-size: 15px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 6px; border-bottom: 1px solid #eef0f3; vertical-align: middle; }
tr.job { cursor: pointer; } tr.job:hover, tr.selected { background: #eef4ff; }
.state { font-weight: 600; } .done { color: #1a7f37; } .failed { color: #c62828; } .cancelled { color: #8a6d00; } .running { color: #0b5cad; } .gone { color: #6b7280; }
progress { width: 120px; vertical-align: middle; }
textarea { width: 100%; height: 260px; font: 12px ui-monospace, monospace; box-sizing: border-box; }
button { font: inherit; padding: 4px 12px; cursor: pointer; }
.problems { color: #c62828; white-space: pre-wrap; font-size: 12px; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px 14px; margin-top: 8px; }
.gallery figure { margin: 0; } .gallery figure div { display: flex; gap: 2px; } .gallery figcaption { text-align: center; }
.gallery img { width: 88px; height: 88px; object-fit: cover; image-rendering: pixelated; border: 1px solid #dde1e7; }
.muted { color: #6b7280; font-size: 12px; }
#login { display: none; } #login.shown { display: block; }
`;

export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>brainlatent service</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>brainlatent</h1><span>fMRI → images with a latent diffusion model · encoding models</span><span id="health"></span><button id="sign-out" type="button" hidden>Sign out</button></header>
<section id="login"><h2>Token</h2><p class="muted">This service needs its bearer token.</p>
<form id="login-form"><input id="token" type="password" autocomplete="current-password" size="40"> <button type="submit">Sign in</button></form>
<div id="login-problems" class="problems"></div></section>
<main>
<div>
<section><h2>Jobs</h2>
<table><thead><tr><th>job</th><th>kind</th><th>state</th><th>stage</th><th>progress</th><th></th></tr></thead><tbody id="jobs"></tbody></table>
<p id="no-jobs" class="muted">No jobs yet.</p></section>
<section id="detail" style="margin-top:16px"><h2>Run</h2><div id="detail-body" class="muted">Select a job.</div></section>
</div>
<section><h2>Submit</h2>
<form id="submit-form">
<label>Example <select id="example"><option value="demo">demo world</option><option value="reconstruct">reconstruct</option><option value="encode">encoding models</option><option value="ridge-fit">ridge fit</option></select></label>
<p class="muted">A job body: <code>{"kind": …, …}</code>. Paths are relative to the service's root folder.</p>
<textarea id="body" spellcheck="false"></textarea>
<p><button id="submit" type="submit">Submit job</button> <span id="submitted" class="muted"></span></p>
<div id="problems" class="problems"></div>
</form></section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
