import { FormatError, InvalidArgumentError } from '../errors.js';
import { fileOpenError } from '../io/byteStream.js';
import { maxJsonBytes, parseJson } from '../io/json.js';
import { readCappedFile } from '../io/readWhole.js';
import { exists } from './betas.js';
import { parseCsv } from './csv.js';
import { cocoCaptionsPath, stimInfoPath } from './paths.js';

/** Captions of NSD images, looked up by 73k id (1-based). */
export interface NsdCaptions {
  /** All captions of an image (COCO has usually five); [] when it has none. */
  get(id: number): string[];
  /** Number of images with at least one caption. */
  size: number;
  source: string;
}

/**
 * Captions from the COCO 2017 caption files found through nsd_stim_info_merged.csv (cocoId, cocoSplit), or,
 * when `file` is given, from a user CSV (columns id73k or nsdId (0-based), and caption) or JSON
 * ({"<id73k>": "caption" | ["caption", ...]} or [{id73k | nsdId, caption}]).
 */
export async function loadNsdCaptions(root: string, file?: string): Promise<NsdCaptions> {
  return file ? loadUserCaptions(file) : loadCocoCaptions(root);
}

/**
 * A captions or stimulus-info file's text (a leading byte-order mark dropped), at most maxJsonBytes: a --captions
 * /dev/zero was read until Node's "Invalid string length", a message that named no file.
 */
async function text(path: string): Promise<string> {
  const s = (await readCappedFile(path, maxJsonBytes(), 'captions files', 'BRAINLATENT_MAX_JSON_BYTES')).toString('utf8');
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

function make(map: Map<number, string[]>, source: string): NsdCaptions {
  return { get: (id) => map.get(id) ?? [], size: map.size, source };
}

function add(map: Map<number, string[]>, id: number, caption: string): void {
  const list = map.get(id);
  if (list) list.push(caption);
  else map.set(id, [caption]);
}

async function loadCocoCaptions(root: string): Promise<NsdCaptions> {
  const infoPath = stimInfoPath(root);
  const rows = parseCsv(await text(infoPath));
  const head = rows[0] ?? [];
  const col = (name: string) => {
    const i = head.indexOf(name);
    if (i < 0) throw new FormatError(`${infoPath}: no column ${name}; found ${head.join(', ')}`);
    return i;
  };
  const [iCoco, iSplit, iNsd] = [col('cocoId'), col('cocoSplit'), col('nsdId')];
  const idOfCoco = new Map<number, number>();
  const splits = new Set<string>();
  for (const r of rows.slice(1)) {
    idOfCoco.set(Number(r[iCoco]), Number(r[iNsd]) + 1);
    splits.add(r[iSplit]);
  }
  const map = new Map<number, string[]>();
  const used: string[] = [];
  for (const split of ['train2017', 'val2017'] as const) {
    if (!splits.has(split)) continue;
    const p = cocoCaptionsPath(root, split);
    if (!(await exists(p))) throw fileOpenError(p, Object.assign(new Error('missing'), { code: 'ENOENT' }));
    // (a syntax error names the file, line and column)
    const coco = parseJson(await text(p), p) as { annotations?: { image_id: number; caption: string }[] } | null;
    if (coco === null || typeof coco !== 'object') throw new FormatError(`${p}: not a COCO captions JSON (expected an object with an "annotations" array)`);
    if (!Array.isArray(coco.annotations)) throw new FormatError(`${p}: no "annotations" array; expected a COCO captions file`);
    for (const a of coco.annotations) {
      const id = idOfCoco.get(a.image_id);
      if (id !== undefined) add(map, id, a.caption.trim());
    }
    used.push(p);
  }
  return make(map, used.join(', '));
}

async function loadUserCaptions(path: string): Promise<NsdCaptions> {
  const body = await text(path);
  const map = new Map<number, string[]>();
  const bad = (what: string) => new FormatError(`${path}: ${what}`);
  if (/\.json$/i.test(path)) {
    // (a syntax error names the file, line and column)
    const j = parseJson(body, path);
    if (Array.isArray(j)) {
      for (const [k, e] of j.entries()) {
        const r = e as { id73k?: number; nsdId?: number; caption?: string };
        const id = r.id73k ?? (r.nsdId !== undefined ? r.nsdId + 1 : undefined);
        if (!Number.isInteger(id) || typeof r.caption !== 'string') throw bad(`entry ${k} needs id73k (or nsdId) and caption`);
        add(map, id as number, r.caption);
      }
    } else if (j && typeof j === 'object') {
      for (const [k, v] of Object.entries(j)) {
        const id = Number(k);
        if (!Number.isInteger(id) || id < 1) throw bad(`key "${k}" is not a 73k id (1-based integer)`);
        for (const c of Array.isArray(v) ? v : [v]) {
          if (typeof c !== 'string') throw bad(`captions of ${k} must be strings`);
          add(map, id, c);
        }
      }
    } else throw bad('expected an object keyed by 73k id or an array of {id73k, caption}');
    return make(map, path);
  }
  const rows = parseCsv(body);
  const head = (rows[0] ?? []).map((h) => h.trim());
  const iCap = head.indexOf('caption');
  const iId = head.indexOf('id73k');
  const iNsd = head.indexOf('nsdId');
  if (iCap < 0 || (iId < 0 && iNsd < 0)) {
    throw bad(`CSV header must have caption and id73k (1-based) or nsdId (0-based) columns; found ${head.join(', ')}`);
  }
  for (const [k, r] of rows.slice(1).entries()) {
    const id = iId >= 0 ? Number(r[iId]) : Number(r[iNsd]) + 1;
    if (!Number.isInteger(id) || id < 1) throw new InvalidArgumentError(`${path}: row ${k + 2} has no valid image id`);
    add(map, id, r[iCap]);
  }
  return make(map, path);
}
