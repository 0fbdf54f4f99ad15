/**
 * run.json's `stageVersions`: what computed each finished stage, read from the stages' own markers (their `ranWith`,
 * written by the process that computed them: a batch's worker on its machine, or an earlier run that a resumed one
 * kept). Said once where every stage agrees (`same`), per stage where they differ, so the record stays small.
 */
import { configHash } from './config.js';
import { readStageMarker, type StageVersionsSummary } from './runFolder.js';

type Versions = Record<string, string>;

const isVersions = (v: unknown): v is Versions =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/**
 * The records of `stages` (ids, in order) whose markers hold for this config: each stage's own (`ranWith`), or one
 * per part where its parts were computed apart (`ranWithParts`: `img2img[<shard>]`, `features[z]`); null where none
 * was recorded. Stages without a marker (not finished) are left out.
 */
async function stageRecords(config: { out: string }, stages: readonly string[]): Promise<[string, Versions | null][]> {
  const hash = configHash(config);
  const out: [string, Versions | null][] = [];
  for (const stage of stages) {
    const m = await readStageMarker(config, stage);
    if (m === null || typeof m !== 'object' || m.configHash !== hash) continue;
    if (isVersions(m.ranWith)) out.push([stage, m.ranWith]);
    else if (m.ranWithParts !== null && typeof m.ranWithParts === 'object' && !Array.isArray(m.ranWithParts)) {
      for (const [part, rec] of Object.entries(m.ranWithParts)) out.push([`${stage}[${part}]`, isVersions(rec) ? rec : null]);
    } else out.push([stage, null]);
  }
  return out;
}

/**
 * The records of `entries`, each value that all of them share said once (`same`), the rest per entry; entries
 * without a record in `notRecorded`. A field some records lack is not shared.
 */
export function summarizeVersions(entries: readonly (readonly [string, Versions | null])[]): StageVersionsSummary {
  const recorded = entries.filter((e): e is readonly [string, Versions] => e[1] !== null);
  const keys = [...new Set(recorded.flatMap(([, r]) => Object.keys(r)))];
  const same: Versions = {};
  for (const k of keys) {
    const v = recorded[0][1][k];
    if (v !== undefined && recorded.every(([, r]) => r[k] === v)) same[k] = v;
  }
  const stages = Object.fromEntries(recorded.map(([id, r]) => [id, Object.fromEntries(Object.entries(r).filter(([k]) => !(k in same)))]));
  const notRecorded = entries.filter(([, r]) => r === null).map(([id]) => id);
  return { same, stages, ...(notRecorded.length ? { notRecorded } : {}) };
}

/** What computed each finished stage of `stages`, from their markers, for run.json. */
export async function stageVersionsSummary(config: { out: string }, stages: readonly string[]): Promise<StageVersionsSummary> {
  return summarizeVersions(await stageRecords(config, stages));
}
