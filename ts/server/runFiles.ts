/**
 * Reading a run folder over HTTP: the list of its files and one file, streamed, with its media type. A request
 * cannot leave the folder (no `..`, no absolute path, no symbolic link that points out), hidden names
 * (temporaries being written, locks) are neither listed nor served, and HTML reports are served under a
 * Content-Security-Policy that lets their own scripts and images run but lets them call nothing, neither themselves
 * nor through another window of the service's origin.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

import type { FastifyReply } from 'fastify';

import { hiddenHtml, type PathHiding } from './htmlPaths.js';
import { FileNotFoundError } from './notFound.js';
import { fileInside, hiddenInJson } from './rootPaths.js';

/** The media type of a run file, by extension (what the run-file route may send; the OpenAPI document lists them). */
export const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  // a report's own scripts and styles (the encoding report's report_files/niivue.umd.js): served as
  // octet-stream with nosniff, the browser refuses to run them
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.npy': 'application/x-npy',
  '.gz': 'application/gzip',
  '.nii': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};

/**
 * What a report page may do: run its inline scripts, show its images; fetch nothing, reach no API. `connect-src`
 * alone did not hold: a report's script framed or opened another page of the service (`/healthz`, a run's .json,
 * the page at `/`: same origin, no such policy) and called that window's fetch, which took the session cookie and
 * answered it the job list (reproduced in chromium). So a report may frame nothing, start no worker and embed no
 * object (`frame-src`, `worker-src`, `object-src`: none), and REPORT_COOP cuts it off from the windows it opens.
 * (A `sandbox` policy would do both, but its opaque origin loses the SameSite session cookie on the report's own
 * images and scripts: 401 under a token.)
 */
const REPORT_CSP = "default-src 'self' data: blob: 'unsafe-inline' 'unsafe-eval'; connect-src data: blob:; frame-src 'none'; worker-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/**
 * A report's windows: one it opens (or that opened it) whose page has another opener policy (every other answer of
 * the service: none) is put in another browsing context group, so the report gets no handle on it, nor it on the report.
 */
const REPORT_COOP = 'same-origin';

export interface RunFile {
  path: string;
  bytes: number;
}

const hidden = (name: string) => name.startsWith('.');

/** Every visible file under `dir`, relative paths with '/', sorted. */
export async function listRunFolder(dir: string, limit = 10_000): Promise<RunFile[]> {
  const out: RunFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (hidden(e.name) || out.length >= limit) continue;
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push({ path: p, bytes: (await stat(join(dir, p))).size });
    }
  };
  await walk('');
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Text files whose served copy is rewritten (`hidden`: paths under the root made root-relative, others replaced):
 * run.json, stages/*.json and cache manifests record the absolute paths the job ran with (the NSD root, the model
 * folder, the ONNX Runtime library), and .json records name the host that computed each stage (served as
 * '<server host>': rootPaths.ts' hiddenInJson). HTML reports are rewritten the same way by context (htmlPaths.ts: text,
 * attributes and JSON data blocks in full, inline scripts and styles root-relative only). The file on disk is
 * unchanged; scripts, styles and binary files are served as they are.
 */
const REWRITTEN = new Set(['.json', '.csv', '.txt']);
const HTML = new Set(['.html']);

/**
 * Larger .json/.csv/.txt files are served as they are (metadata is far smaller; a table this large is numbers).
 * An HTML report is rewritten whatever its size: an encode report embeds its volumes (base64, ~4 MB a map) and
 * can pass this while its text still names server paths.
 */
const MAX_REWRITTEN_BYTES = 64 << 20;

export async function sendRunFile(reply: FastifyReply, dir: string, rel: string, paths?: PathHiding): Promise<FastifyReply> {
  if (!rel || rel.split('/').some(hidden)) throw new FileNotFoundError(rel);
  const file = await fileInside(dir, rel);
  if (!file) throw new FileNotFoundError(rel);
  const st = await stat(file);
  if (!st.isFile()) throw new FileNotFoundError(rel);
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  void reply.header('content-type', type).header('content-length', String(st.size)).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache');
  if (type.startsWith('text/html')) void reply.header('content-security-policy', REPORT_CSP).header('cross-origin-opener-policy', REPORT_COOP);
  const ext = extname(file).toLowerCase();
  if (paths && (HTML.has(ext) || (REWRITTEN.has(ext) && st.size <= MAX_REWRITTEN_BYTES))) {
    const text = await readFile(file, 'utf8');
    // (a .json file's string values rewritten once decoded: a path after an escape, '\n/opt/x', is found there)
    const body = Buffer.from(ext === '.json' ? hiddenInJson(text, (t) => paths.hidden(t)) : REWRITTEN.has(ext) ? paths.hidden(text) : hiddenHtml(text, file, paths), 'utf8');
    return reply.header('content-length', String(body.length)).send(body);
  }
  return reply.send(createReadStream(file));
}
