/** Whether the Redis of the shared job queue answers (for /readyz): one PING on a short-lived connection. */
import { Redis, type RedisOptions } from 'ioredis';

import { redisConnection } from '../../batch/redis.js';

/** The URL without its password, for messages. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url.includes('://') ? url : `redis://${url}`);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis (unparsable URL)';
  }
}

export async function redisReachable(url: string, timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  const shown = shownRedisUrl(url);
  const client = new Redis({
    ...(redisConnection(url) as RedisOptions),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {
    // reported through the failed connect or ping below
  });
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === 'PONG' ? { ok: true, detail: `jobs through Redis at ${shown} (reachable)` } : { ok: false, detail: `Redis at ${shown} answered PING with '${pong}'` };
  } catch (e) {
    return { ok: false, detail: `Redis at ${shown} is not reachable: ${(e as Error).message}` };
  } finally {
    client.disconnect();
  }
}
