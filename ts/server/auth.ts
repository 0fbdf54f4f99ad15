/**
 * Who may call the service. With a token, every request but the health checks and the page's static shell must
 * carry it: `Authorization: Bearer <token>`, or the session cookie the page obtains from `POST /v1/session`: a
 * random session id (never the token), which expires (Max-Age) and which `DELETE /v1/session` revokes; HttpOnly,
 * SameSite=Strict (other sites cannot ride on it), and Secure when the request came over TLS. Without a token the
 * service answers loopback clients only, and not requests a proxy forwarded, so neither a plugin mounted in an app
 * that listens on every interface nor a service behind a reverse proxy on the same machine is exposed by accident.
 * Every comparison with the token goes through a GuessLimiter (guessLimit.ts): a wrong token is answered late, and an
 * address with a few wrong ones waiting is answered 429 without its token being compared.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';

import type { FastifyReply, FastifyRequest } from 'fastify';

import { GUESS_RETRY_AFTER_S, GuessLimiter, tooManyGuessesMessage, type Attempt } from './guessLimit.js';
import { SessionStore } from './sessions.js';

/** The session cookie's name before what makes it this service's own (below). */
export const SESSION_COOKIE = 'brainlatent_session';

/** What a cookie name may hold here (RFC 6265 token characters, a safe subset). */
export const COOKIE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The session cookie's name for a request. A browser keeps cookies per host name, not per port, so two services on
 * one host (ports 8080 and 8081, both Path=/) would replace each other's session under one name: by default the
 * name carries the port the request came in on, and the plugin's prefix when it has one
 * (`brainlatent_session_8080`, `brainlatent_session_8080_brainlatent`); `brainlatent_session` when there is no
 * port (app.inject). `fixed` (the plugin's `sessionCookieName`) replaces it.
 */
export function sessionCookieNamer(fixed: string | undefined, prefix: string): (req: FastifyRequest) => string {
  if (fixed !== undefined) return () => fixed;
  const suffix = prefix.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  return (req) => {
    const port = req.socket?.localPort;
    return [SESSION_COOKIE, port ? String(port) : '', suffix].filter(Boolean).join('_');
  };
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

/** A host name or address to bind that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(host);
}

/** This machine's host name, lower case (read once: the check runs on every request of a service without a token). */
const THIS_HOST = hostname().toLowerCase();

/**
 * Whether a request's Host header names this machine (localhost, a loopback address, its own host name), or is absent
 * (an HTTP/1.0 client): what a service without a token also requires of requests on loopback. A web page of another
 * site that rebinds its own name to 127.0.0.1 (DNS rebinding) reaches loopback from the user's browser, but sends its
 * own name: it could load models and run jobs writing under the root (reproduced: Host: attacker.example, 202).
 */
export function isLocalHostHeader(host: string | undefined): boolean {
  if (host === undefined || host === '') return true;
  const name = (host.startsWith('[') ? host.slice(1, Math.max(1, host.indexOf(']'))) : host.replace(/:\d*$/, '')).toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || isLoopback(name) || name === THIS_HOST;
}

/**
 * Headers a reverse proxy adds to what it forwards (nginx, Caddy, Traefik, Apache, HAProxy, Squid: one or more of
 * them). A proxy on this machine connects from loopback and, with nginx's defaults, sends `Host: 127.0.0.1:PORT`:
 * without a token the service took every request it forwarded as this machine's own, and so answered whoever could
 * reach the proxy (reproduced: X-Forwarded-For 203.0.113.9 on loopback, GET /v1/jobs 200).
 */
const FORWARDED_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via'] as const;

/** The first proxy header (FORWARDED_HEADERS) a request carries, or undefined. */
export function forwardedHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  return FORWARDED_HEADERS.find((h) => headers[h] !== undefined);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `%`-decoded, or as sent when it is not valid percent-encoding (a client's malformed cookie is not our 500). */
function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The values of every cookie called `name` (a browser sends one per matching Path), first first. */
export function cookies(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(decoded(part.slice(eq + 1).trim()));
  }
  return values;
}

/** The first cookie called `name`, or undefined. */
export function cookie(header: string | undefined, name: string): string | undefined {
  return cookies(header, name)[0];
}

/** What the request's session cookies were: none, shaped like an id this service issues, or anything else. */
type SentSession = 'none' | 'stale' | 'malformed';

/** Session ids are 32 random bytes in base64url (sessions.ts). */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

function sentSession(header: string | undefined, name: string): SentSession {
  const values = cookies(header, name);
  if (values.length === 0) return 'none';
  return values.some((v) => SESSION_ID.test(v)) ? 'stale' : 'malformed';
}

/** Why a request without a valid credential is refused, in terms of what it sent. */
function unauthorized(header: string | undefined, scheme: string, session: SentSession): string {
  if (!header && session === 'stale') return 'the session has expired or was signed out (or the service restarted): sign in again, or send Authorization: Bearer <token>';
  if (!header && session === 'malformed') return 'the session cookie is not valid (not a session id this service issued): sign in again, or send Authorization: Bearer <token>';
  if (!header) return 'this service needs a bearer token (Authorization: Bearer <token>)';
  if (scheme.toLowerCase() !== 'bearer') {
    return `the Authorization header is of scheme '${scheme.slice(0, 32) || '(none)'}': this service expects a bearer token (Authorization: Bearer <token>)`;
  }
  return 'the bearer token is not valid';
}

/** The request's session id, when its cookie names a live session of this process. */
function liveSession(sessions: SessionStore, req: FastifyRequest, name: string): string | undefined {
  return cookies(req.headers.cookie, name).find((id) => sessions.valid(id));
}

export interface Authenticator {
  /**
   * Whether the request may proceed; answers 401/403 (or 429: its address has too many wrong tokens waiting) itself
   * when not (unless `quiet`), closing the connection: its body is not read, and Node otherwise read what was left
   * of it to keep the connection, so a client without a token that sent a byte every few seconds held the socket
   * until requestTimeoutMs (313 s measured, 300 s by default). A wrong bearer token is known false only after the
   * limiter's delay, quiet or not (a quiet check's answer also tells whether the token was right).
   */
  check(req: FastifyRequest, reply: FastifyReply, options?: { quiet?: boolean }): Promise<boolean>;
  /** Whether `candidate` is the token (constant time), through the limiter: 'wrong' late, 'busy' not compared. */
  attempt(req: FastifyRequest, candidate: string): Promise<Attempt>;
  readonly hasToken: boolean;
  /** The sign-in sessions (ids in the cookie). */
  readonly sessions: SessionStore;
  /** The session cookie's name for this request (sessionCookieNamer). */
  cookieName(req: FastifyRequest): string;
  /** How wrong tokens are slowed. */
  readonly limiter: GuessLimiter;
}

/** The 429 of an address with too many wrong tokens waiting (closing the connection, as a 401 does). */
export function tooManyGuesses(reply: FastifyReply, limiter: GuessLimiter): FastifyReply {
  return reply.code(429).header('retry-after', String(GUESS_RETRY_AFTER_S)).header('connection', 'close').send({ error: 'Too Many Requests', message: tooManyGuessesMessage(limiter), code: 'TooManyGuesses' });
}

/**
 * `sessions`: the store of sign-in sessions (default: one whose sessions last DEFAULT_SESSION_MAX_AGE_S); `cookieName`:
 * the session cookie's name per request; `limiter`: how wrong tokens are slowed (default: GuessLimiter's).
 */
export function authenticator(token: string | null, sessions: SessionStore = new SessionStore(), cookieName: (req: FastifyRequest) => string = () => SESSION_COOKIE, limiter: GuessLimiter = new GuessLimiter()): Authenticator {
  const want = token ? digest(token) : null;
  const matches = (candidate: string) => want !== null && timingSafeEqual(digest(candidate), want);
  // (req.ip: the client as Fastify sees it, through a trusted proxy; a request whose socket has gone may have none)
  const attempt = (req: FastifyRequest, candidate: string) => limiter.attempt(req.ip ?? req.socket?.remoteAddress ?? '', () => matches(candidate));
  return {
    hasToken: want !== null,
    attempt,
    sessions,
    cookieName,
    limiter,
    async check(req, reply, options = {}) {
      if (!want) {
        const local = isLoopback(req.socket.remoteAddress);
        const proxied = forwardedHeader(req.headers);
        if (local && proxied === undefined && isLocalHostHeader(req.headers.host)) return true;
        if (options.quiet) return false;
        const message = !local
          ? 'this service has no token and answers only on loopback; start it with --token to serve other hosts'
          : proxied !== undefined
            ? `this service has no token and answers only requests made on this machine, not ones a proxy forwards (this one carries ${proxied}): behind a proxy anyone who reaches the proxy would reach the service; start it with --token`
            : `this service has no token and answers only requests addressed to this machine (localhost, a loopback address or its host name), not Host ${req.headers.host}; start it with --token to serve other names`;
        void reply.code(403).header('connection', 'close').send({ error: 'Forbidden', message, code: 'Forbidden' });
        return false;
      }
      const header = req.headers.authorization;
      // (the scheme's name is case-insensitive: RFC 9110 §11.1)
      const scheme = header?.trim().split(/\s+/)[0] ?? '';
      const bearer = scheme.toLowerCase() === 'bearer' ? header!.trim().slice(scheme.length).trim() : undefined;
      // a bearer header is checked alone (a wrong token is not rescued by a cookie); else the session cookie (a
      // random id of 32 bytes: nothing to guess, so a stale one is answered at once)
      const result = bearer !== undefined ? await attempt(req, bearer) : liveSession(sessions, req, cookieName(req)) !== undefined ? 'right' : 'wrong';
      if (result === 'right') return true;
      if (options.quiet) return false;
      if (result === 'busy') {
        tooManyGuesses(reply, limiter);
        return false;
      }
      void reply.code(401).header('www-authenticate', 'Bearer realm="brainlatent"').header('connection', 'close').send({ error: 'Unauthorized', message: unauthorized(header, scheme, sentSession(req.headers.cookie, cookieName(req))), code: 'Unauthorized' });
      return false;
    },
  };
}
