/**
 * The demo world's manifest (world/world.json): the key of the parameters and code that built it, and every
 * file it wrote with its size. `demo` reuses a world whose key matches and whose files are all there;
 * anything else — another parameter, another brainlatent or ONNX Runtime, edited code — rebuilds it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { isAtomicTemporary, writeJsonAtomic } from '../io/atomicWrite.js';
import { stableJson } from '../pipeline/config.js';

export interface WorldManifest {
  format: 'brainlatent-demo-world';
  version: 1;
  /** sha256 of the resolved parameters and the code version. */
  key: string;
  codeVersion: string;
  options: Record<string, unknown>;
  components: number;
  testImages: number;
  /** Every file of the world, relative to its folder, with its size in bytes. */
  files: { path: string; size: number }[];
  seconds: number;
  createdAt: string;
}

const MANIFEST = 'world.json';

function walk(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (e.isFile() && keep(e.name)) out.push(p);
  }
  return out.sort();
}

let cachedCode: string | undefined;

/**
 * A fingerprint of the code that builds the world: brainlatent's version, ONNX Runtime's (it runs the VAE and
 * text encoder that place the mixture) and the content of every module of this package (ts/ or dist/).
 */
export function codeVersion(): string {
  if (cachedCode) return cachedCode;
  const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const h = createHash('sha256');
  const require = createRequire(import.meta.url);
  for (const pkg of [join(codeRoot, '..', 'package.json'), 'onnxruntime-node/package.json']) {
    try {
      const file = pkg.startsWith('/') ? pkg : require.resolve(pkg);
      h.update(`${pkg}@${(JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version}\n`);
    } catch {
      h.update(`${pkg}@unknown\n`);
    }
  }
  for (const f of walk(codeRoot, (n) => (n.endsWith('.js') || n.endsWith('.ts')) && !n.endsWith('.d.ts'))) {
    h.update(relative(codeRoot, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  cachedCode = h.digest('hex').slice(0, 16);
  return cachedCode;
}

export function worldKey(options: Record<string, unknown>, code = codeVersion()): string {
  return createHash('sha256').update(stableJson({ options, code })).digest('hex').slice(0, 16);
}

export async function readWorldManifest(dir: string): Promise<WorldManifest | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as WorldManifest;
    return m.format === 'brainlatent-demo-world' && m.version === 1 ? m : null;
  } catch {
    return null;
  }
}

/** Null when every file of the manifest is there with its size, else the first one that is not. */
export function worldDamage(dir: string, m: WorldManifest): string | null {
  for (const f of m.files) {
    const p = join(dir, f.path);
    if (!existsSync(p)) return `${f.path} is missing`;
    if (statSync(p).size !== f.size) return `${f.path} has changed size`;
  }
  return null;
}

/** The files now in the world folder (the manifest excepted). */
export function worldFiles(dir: string): { path: string; size: number }[] {
  return walk(dir, (n) => n !== MANIFEST && !n.endsWith('.tmp') && !isAtomicTemporary(n)).map((p) => ({ path: relative(dir, p), size: statSync(p).size }));
}

/** Written last, to a temporary name renamed into place: a world without it is rebuilt. */
export async function writeWorldManifest(dir: string, m: WorldManifest): Promise<void> {
  await writeJsonAtomic(join(dir, MANIFEST), m);
}

export const worldManifestPath = (dir: string): string => join(dir, MANIFEST);
