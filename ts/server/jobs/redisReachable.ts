/** Whether the Redis of the shared job queue answers (for /readyz): batch/redis.ts's one-PING probe, worded for the service. */
import { probeRedis, shownRedisUrl } from '../../batch/redis.js';

export { shownRedisUrl };

export async function redisReachable(url: string, timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  const shown = shownRedisUrl(url);
  const r = await probeRedis(url, timeoutMs);
  return r.ok ? { ok: true, detail: `jobs through Redis at ${shown} (reachable)` } : { ok: false, detail: `Redis at ${shown} is not reachable: ${r.reason}` };
}
