/**
 * What both HTML reports share: escaping, relative links that survive odd file names, the page's base style,
 * and a sortable-table script. Reports are single static files that open from disk (file://): no external
 * resource, no fetch, relative paths only.
 */
import { relative, sep } from 'node:path';

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A path relative to the report's folder as a URL (each segment encoded; '/' separators). */
export function relUrl(fromDir: string, path: string): string {
  const r = relative(fromDir, path) || '.';
  return r.split(sep).map(encodeURIComponent).join('/');
}

/** An already-relative path as a URL. */
export const url = (p: string): string => p.split(/[\\/]/).map(encodeURIComponent).join('/');

/** A path for display: relative to the run folder (the report never prints where the user's disk keeps things). */
export function displayPath(fromDir: string, path: string): string {
  const r = relative(fromDir, path);
  return r === '' ? '.' : r.split(sep).join('/');
}

export const BASE_CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;padding:1.2em 1.5em 3em;color:#1d1d1f;max-width:1400px}
h1{font-size:1.6em;margin:.2em 0 .4em}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d4d4d4;padding:3px 8px;text-align:right;vertical-align:middle}
th{background:#f3f3f3;font-weight:600}td:first-child,th:first-child{text-align:left}
caption{caption-side:bottom;text-align:left;color:#555;font-size:12.5px;padding-top:.3em;max-width:70em}
.note{color:#555;font-size:13px;max-width:75em}
.warning{background:#fff4e5;border:1px solid #f0a040;border-radius:4px;padding:.5em .8em;margin:.6em 0;max-width:75em}
.warning strong{color:#a05000}
.scroll{max-width:100%;overflow-x:auto}
code{font-size:12.5px;background:#f5f5f5;padding:0 3px;border-radius:3px}
table.sortable th[data-sort]{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[data-sort]::after{content:" \\2195";color:#aaa;font-weight:normal}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:#333}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:#333}
`;

/**
 * Sorts the body rows of every table.sortable when a header with data-sort is clicked: numerically by each
 * cell's data-v (missing values last), else by text; a second click reverses.
 */
export const SORTABLE_SCRIPT = `
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.querySelectorAll('thead th[data-sort]');
  heads.forEach(function (th) {
    th.tabIndex = 0;
    var go = function () {
      var col = Number(th.dataset.col), numeric = th.dataset.sort === 'number';
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var key = function (r) { var c = r.cells[col]; if (!numeric) return c.textContent.trim(); var v = c.dataset.v; return v === undefined || v === '' ? NaN : Number(v); };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (numeric) { var nx = !isFinite(x), ny = !isFinite(y); if (nx || ny) return nx === ny ? 0 : nx ? 1 : -1; return dir * (x - y); }
        return dir * String(x).localeCompare(String(y), undefined, { numeric: true });
      });
      rows.forEach(function (r) { body.appendChild(r); });
    };
    th.addEventListener('click', go);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
  });
});
`;
