/**
 * Slows token guessing without locking anyone out. Before, a client could try tokens as fast as the service answered
 * (POST /v1/session: ~3,200 wrong tokens a second from one address on two shared cores). Now a wrong token is answered
 * after WRONG_TOKEN_DELAY_MS, on a timer (no thread or CPU is held meanwhile), and a client address may have at most
 * MAX_WRONG_WAITING wrong tokens waiting for that answer: a request that brings a token while it has that many is
 * answered 429 at once, its token not compared, so a 429 says nothing about the token (comparing first would have
 * made the fast 429 an unlimited oracle). One address thus tries at most MAX_WRONG_WAITING / delay tokens a second
 * (16). A right token is answered at once and counts for nothing; a client with a session cookie brings no token.
 * Addresses are the client's as Fastify sees it (`req.ip`: the proxy's own without trustProxy), IPv6 ones by their
 * /64 (one host usually has a whole /64 to pick addresses from).
 */
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a wrong token waits for its answer. */
export const WRONG_TOKEN_DELAY_MS = 250;

/** Wrong tokens of one address that may wait for their answers at once; one more request with a token is a 429. */
export const MAX_WRONG_WAITING = 4;

/** Seconds a client refused 429 is told to wait: its waiting wrong tokens are answered within that. */
export const GUESS_RETRY_AFTER_S = 1;

export type Attempt = 'right' | 'wrong' | 'busy';

/** The key an address is counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its first 64 bits. */
export function clientKey(address: string): string {
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  if (isIP(a) !== 6) return a;
  const groups = (part: string) => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const [head, tail] = a.split('%')[0].split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

export class GuessLimiter {
  /** Address key → wrong tokens waiting for their answer (no entry at 0: the map holds only what is waiting). */
  private readonly waiting = new Map<string, number>();

  constructor(
    readonly delayMs: number = WRONG_TOKEN_DELAY_MS,
    readonly maxWaiting: number = MAX_WRONG_WAITING,
    /** How a wrong token waits (a test's may be a promise it settles itself). */
    private readonly wait: (ms: number) => Promise<unknown> = (ms) => sleep(ms),
  ) {}

  /**
   * 'busy' when `address` already has maxWaiting wrong tokens waiting (`isRight` not called); else 'right' at once
   * when `isRight()`, or 'wrong' after delayMs.
   */
  async attempt(address: string, isRight: () => boolean): Promise<Attempt> {
    const key = clientKey(address);
    const n = this.waiting.get(key) ?? 0;
    if (n >= this.maxWaiting) return 'busy';
    if (isRight()) return 'right';
    this.waiting.set(key, n + 1);
    try {
      await this.wait(this.delayMs);
    } finally {
      const left = (this.waiting.get(key) ?? 1) - 1;
      if (left > 0) this.waiting.set(key, left);
      else this.waiting.delete(key);
    }
    return 'wrong';
  }

  /** Wrong tokens waiting now, all addresses together. */
  get waitingNow(): number {
    let n = 0;
    for (const v of this.waiting.values()) n += v;
    return n;
  }
}

/** The 429's message. */
export function tooManyGuessesMessage(limiter: GuessLimiter): string {
  return `too many wrong tokens from this address are waiting for their answer (at most ${limiter.maxWaiting} at once; each is answered after ${limiter.delayMs / 1000} s): retry after ${GUESS_RETRY_AFTER_S} s`;
}
