/**
 * The page's sign-in sessions: `POST /v1/session` exchanges the token for a random session id (32 bytes from
 * crypto.randomBytes), kept in this process's memory only with an absolute expiry; the cookie carries the id, never
 * the token. `DELETE /v1/session` forgets it. A restart forgets every session (their cookies are then refused, 401),
 * as does the expiry. Ids are held by their SHA-256, so the map's lookups do not compare the ids themselves.
 */
import { createHash, randomBytes } from 'node:crypto';

/** How long a session lasts unless the plugin's `sessionMaxAgeSeconds` says otherwise: 12 hours. */
export const DEFAULT_SESSION_MAX_AGE_S = 12 * 60 * 60;

/** Sessions kept at most: beyond, the oldest go first (a client signing in in a loop cannot grow the map). */
const MAX_SESSIONS = 10_000;

const key = (id: string) => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  /** Hash of the id → its expiry (ms since the epoch), in creation order. */
  private readonly sessions = new Map<string, number>();

  constructor(
    readonly maxAgeSeconds: number = DEFAULT_SESSION_MAX_AGE_S,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session's id. */
  create(): string {
    this.prune();
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(key(id), this.now() + this.maxAgeSeconds * 1000);
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return id;
  }

  /** Whether `id` is a session of this process that has not expired (an expired one is forgotten). */
  valid(id: string): boolean {
    const k = key(id);
    const expires = this.sessions.get(k);
    if (expires === undefined) return false;
    if (this.now() < expires) return true;
    this.sessions.delete(k);
    return false;
  }

  /** Forgets `id` (signing out); whether it was a session. */
  delete(id: string): boolean {
    return this.sessions.delete(key(id));
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const t = this.now();
    for (const [k, expires] of this.sessions) if (expires <= t) this.sessions.delete(k);
  }
}
