/**
 * Who holds a batch name in Redis, decided atomically (Lua scripts: Redis runs each whole, nothing in between). A
 * name is held by the batch's record (submitPlan writes it) or, before that, by a service's claim: `serve --redis`
 * accepts a manifest only if its name is free or already its plan's, and its job's process records the batch later;
 * a check that only read the record let two manifests of one name both be accepted (the second then failed at run
 * time). At most one of the two exists: a claim is taken only where there is no record, and the record, written only
 * where the claim is of its own plan, replaces the claim.
 *
 * A claim (a Redis hash: `hash` → the plan's hash, `job:<id>` → 1 per service job holding it) is released when the
 * batch is recorded, when its last holding job ends without having recorded it (failed or cancelled before, the
 * service shut down), and by `batch cancel NAME --purge` (a claim left by a service that stopped before its job ran).
 * Each call is one short-lived connection with bounded waits (redis.ts withShortLivedRedis): a Redis that accepts the
 * connection but stalls fails it with a RedisUnreachableError instead of holding a submission, a cancel or a service's
 * shutdown for ever.
 */
import { splitBatchMarkLua } from './cancelMarks.js';
import { keys, withShortLivedRedis, type BatchRecord } from './redis.js';

/**
 * What holds a name for another plan: the batch's record, or a service's claim (its plan's hash, and the ids of the
 * service jobs that hold it, so that a client can find or cancel them), not recorded yet.
 */
export type NameHolder = { by: 'record'; record: BatchRecord } | { by: 'claim'; hash: string; jobs: string[] };

// (the record's hash read in Lua: a record that does not parse holds the name for no plan this could be)
const RECORD_HASH = `
local function recordHash(text)
  local ok, r = pcall(cjson.decode, text)
  if ok and type(r) == 'table' and type(r.hash) == 'string' then return r.hash end
  return ''
end
local rec = redis.call('GET', KEYS[1])
if rec and recordHash(rec) ~= ARGV[1] then return {'record', rec} end
local held = redis.call('HGET', KEYS[2], 'hash')
if held and held ~= ARGV[1] then
  local answer = {'claim', held}
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    if string.sub(f, 1, 4) == 'job:' then table.insert(answer, string.sub(f, 5)) end
  end
  return answer
end
`;

/** KEYS: record, claim. ARGV: hash, holder field. Claims the name for the hash unless it is recorded already. */
const CLAIM = `${RECORD_HASH}
if not rec then redis.call('HSET', KEYS[2], 'hash', ARGV[1], ARGV[2], '1') end
return {'ours'}`;

/** KEYS: claim. ARGV: holder field. The claim goes with its last holder. */
const RELEASE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * KEYS: record, claim, batches, cancelled, cancelled subjects. ARGV: hash, record JSON, batch id, now, the subjects'
 * names. Records the batch; 'created' when there was no record (marks left of an earlier batch of the name go). A
 * submission of a batch recorded before splits its cancel mark into its subjects' (cancelMarks.ts): each subject's
 * is lifted as the submission adds it again, and a subject it leaves (one of its jobs still running) stays cancelled.
 */
const RECORD = `${RECORD_HASH}
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if rec then
${splitBatchMarkLua(4, 5, 4, 5)}
  return {'replaced'}
end
redis.call('DEL', KEYS[4], KEYS[5])
return {'created'}`;

/** KEYS: record, batches. ARGV: record JSON, batch id. Removes the record if it is still exactly this one. */
const UNRECORD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]); redis.call('HDEL', KEYS[2], ARGV[2]) end
return 0`;

const holderField = (job: string) => `job:${job}`;

function holderOf(answer: unknown): NameHolder | null {
  const [what, value, ...jobs] = answer as [string, string?, ...string[]];
  if (what === 'record') {
    try {
      return { by: 'record', record: JSON.parse(value!) as BatchRecord };
    } catch {
      return { by: 'record', record: { hash: '' } as BatchRecord };
    }
  }
  return what === 'claim' ? { by: 'claim', hash: value!, jobs: jobs.sort() } : null;
}

/**
 * Claims the name `batch` for the plan `hash`, on behalf of the service job `job`: null when the name is now (or was
 * already) this plan's — free, claimed or recorded for the same hash —, else what holds it for another plan.
 */
export async function claimBatchName(url: string, batch: string, hash: string, job: string): Promise<NameHolder | null> {
  return withShortLivedRedis(url, async (c) => holderOf(await c.eval(CLAIM, 2, keys.batch(batch), keys.claim(batch), hash, holderField(job))));
}

/** The job `job` no longer holds its claim on `batch` (it ended); the claim goes with its last holder. Nothing when it was recorded since. */
export async function releaseBatchName(url: string, batch: string, job: string): Promise<void> {
  await withShortLivedRedis(url, async (c) => c.eval(RELEASE, 1, keys.claim(batch), holderField(job)));
}

/**
 * Records the batch unless its name is held for another plan (then: what holds it, nothing written). `created`: there
 * was no record before (undoRecord can take it back).
 */
export async function recordBatch(url: string, record: BatchRecord): Promise<{ held: NameHolder } | { created: boolean }> {
  const answer = await withShortLivedRedis(url, (c) => c.eval(RECORD, 5, keys.batch(record.id), keys.claim(record.id), keys.batches, keys.cancelled(record.id), keys.cancelledSubjects(record.id), record.hash, JSON.stringify(record), record.id, new Date().toISOString(), ...record.subjects.map((s) => s.name)));
  const held = holderOf(answer);
  return held ? { held } : { created: (answer as string[])[0] === 'created' };
}

/** Takes back a record recordBatch created (the submission failed after it), if it is still that very record. */
export async function undoRecord(url: string, record: BatchRecord): Promise<void> {
  await withShortLivedRedis(url, (c) => c.eval(UNRECORD, 2, keys.batch(record.id), keys.batches, JSON.stringify(record), record.id));
}
