import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthNsd, type SynthNsdOptions, type SynthNsdResult } from '../../ts/synth/nsd.js';

/** Writes a miniature NSD into a fresh temp folder; call cleanup() in afterAll. */
export async function makeMiniNsd(opts: Partial<SynthNsdOptions> = {}): Promise<SynthNsdResult & { cleanup: () => void; tmp: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'bl-mini-nsd-'));
  const root = join(tmp, 'nsd');
  const r = await synthNsd({ out: root, ...opts });
  return { ...r, tmp, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}
