/**
 * The page's sign-in sessions: the cookie is a random id, not the token; it carries Max-Age (12 h by default,
 * configurable), HttpOnly and SameSite=Strict; the session expires, `DELETE /v1/session` signs out, and a restart
 * forgets every session (401). Bearer tokens work as before, with or without a cookie.
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { brainlatentPlugin } from '../../ts/server/index.js';
import { trustProxyFlag } from '../../ts/server/serve.js';
import { SessionStore } from '../../ts/server/sessions.js';
import { OTHER_TEST_TOKEN, startTestServer, TEST_TOKEN, type TestServer } from './helpers.js';

const TOKEN = TEST_TOKEN;

/** The session cookie's default name: it carries the service's port. */
const cookieName = (s: TestServer) => `brainlatent_session_${new URL(s.url).port}`;

async function signIn(s: TestServer): Promise<{ jar: string; setCookie: string }> {
  const r = await s.call('POST', '/v1/session', { token: TOKEN });
  expect(r.status, r.text).toBe(204);
  const setCookie = r.headers.get('set-cookie')!;
  return { jar: setCookie.split(';')[0], setCookie };
}

describe('sign-in sessions', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TOKEN });
  });
  afterAll(async () => s?.stop());

  it('the cookie is a random session id, not the token, with Max-Age 12 h, HttpOnly and SameSite=Strict', async () => {
    const a = await signIn(s);
    const b = await signIn(s);
    const id = a.jar.split('=')[1];
    // the name carries the port (two services on one host keep their own sessions)
    expect(a.jar.startsWith(`brainlatent_session_${new URL(s.url).port}=`)).toBe(true);
    expect(id).not.toContain(TOKEN);
    expect(decodeURIComponent(id)).not.toBe(TOKEN);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(b.jar).not.toBe(a.jar);
    expect(a.setCookie).toMatch(/; Max-Age=43200;/);
    expect(a.setCookie).toMatch(/; HttpOnly/);
    expect(a.setCookie).toMatch(/; SameSite=Strict/);
    expect(a.setCookie).toMatch(/; Path=\//);
    // plain HTTP: no Secure (a browser would not send it back)
    expect(a.setCookie).not.toMatch(/Secure/);
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: a.jar })).status).toBe(200);
    expect((await s.call('GET', '/v1/session', undefined, { cookie: a.jar })).json).toEqual({ tokenRequired: true, signedIn: true });
    // the token itself as the cookie's value is not a session
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: `${cookieName(s)}=${TOKEN}` })).status).toBe(401);
  });

  it('DELETE /v1/session signs out: the session is forgotten and the cookie cleared', async () => {
    const { jar } = await signIn(s);
    const out = await s.call('DELETE', '/v1/session', undefined, { cookie: jar });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe(`${cookieName(s)}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`);
    const after = await s.call('GET', '/v1/jobs', undefined, { cookie: jar });
    expect(after.status).toBe(401);
    expect(after.json.message).toMatch(/^the session has expired or was signed out/);
    expect((await s.call('GET', '/v1/session', undefined, { cookie: jar })).json.signedIn).toBe(false);
    // signing out without a session is harmless
    expect((await s.call('DELETE', '/v1/session')).status).toBe(204);
  });

  it('bearer tokens work as before, and a wrong one is not rescued by a valid cookie', async () => {
    const { jar } = await signIn(s);
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await s.call('GET', '/v1/jobs', undefined, { authorization: 'Bearer wrong', cookie: jar })).status).toBe(401);
  });

  it('a session from before a restart is refused (401)', async () => {
    const { jar } = await signIn(s);
    const again = await startTestServer({ token: TOKEN }, s.root);
    try {
      expect((await again.call('GET', '/v1/jobs', undefined, { cookie: jar })).status).toBe(401);
    } finally {
      await again.stop();
    }
  });

  it('the Max-Age follows sessionMaxAgeSeconds', async () => {
    const short = await startTestServer({ token: TOKEN, sessionMaxAgeSeconds: 60 });
    try {
      expect((await signIn(short)).setCookie).toMatch(/; Max-Age=60;/);
    } finally {
      await short.stop();
    }
  });
});

describe('the session cookie over TLS', () => {
  it('is Secure when the request came over TLS (here: through a proxy the app trusts)', async () => {
    const app = Fastify({ trustProxy: true });
    await app.register(brainlatentPlugin, { prefix: '/bl', root: process.cwd(), token: TOKEN, defaultMetrics: false, page: false });
    try {
      const over = (proto: string) => app.inject({ method: 'POST', url: '/bl/v1/session', headers: { 'content-type': 'application/json', 'x-forwarded-proto': proto }, payload: { token: TOKEN } });
      const tls = await over('https');
      expect(tls.statusCode).toBe(204);
      expect(tls.headers['set-cookie']).toMatch(/; Path=\/bl; Max-Age=43200; HttpOnly; SameSite=Strict; Secure$/);
      expect((await over('http')).headers['set-cookie']).not.toMatch(/Secure/);
    } finally {
      await app.close();
    }
  });
});

describe('startServer / serve --trust-proxy', () => {
  const signInOver = (s: TestServer, proto: string) => s.call('POST', '/v1/session', { token: TOKEN }, { 'x-forwarded-proto': proto });

  // (serve created Fastify without trustProxy and had no TLS option: its cookie could never be Secure)
  it('X-Forwarded-Proto https makes the cookie Secure only when the peer is a trusted proxy', async () => {
    const trusted = await startTestServer({ token: TOKEN, trustProxy: '127.0.0.1' });
    const untrusted = await startTestServer({ token: TOKEN });
    const elsewhere = await startTestServer({ token: TOKEN, trustProxy: '10.0.0.0/8' });
    try {
      expect((await signInOver(trusted, 'https')).headers.get('set-cookie')).toMatch(/; SameSite=Strict; Secure$/);
      expect((await signInOver(trusted, 'http')).headers.get('set-cookie')).not.toMatch(/Secure/);
      expect((await signInOver(untrusted, 'https')).headers.get('set-cookie')).not.toMatch(/Secure/);
      expect((await signInOver(elsewhere, 'https')).headers.get('set-cookie')).not.toMatch(/Secure/);
      // sign-out clears it with the same attributes
      expect((await trusted.call('DELETE', '/v1/session', undefined, { 'x-forwarded-proto': 'https' })).headers.get('set-cookie')).toMatch(/Max-Age=0; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await Promise.all([trusted.stop(), untrusted.stop(), elsewhere.stop()]);
    }
  });

  it('--trust-proxy takes true/false or addresses and CIDR ranges; a hop count or garbage is refused, naming the flag', () => {
    expect(trustProxyFlag('true')).toBe(true);
    expect(trustProxyFlag('false')).toBe(false);
    expect(trustProxyFlag('127.0.0.1, 10.0.0.0/8,::1')).toBe('127.0.0.1,10.0.0.0/8,::1');
    expect(trustProxyFlag('loopback')).toBe('loopback');
    expect(() => trustProxyFlag('1')).toThrow(/^--trust-proxy: a number of hops cannot tell the proxy from a client/);
    expect(() => trustProxyFlag('nginx.local')).toThrow(/^--trust-proxy: expected true, or the proxies' addresses/);
    expect(() => trustProxyFlag('')).toThrow(/^--trust-proxy:/);
  });

  it('startServer refuses a trustProxy that is not one', async () => {
    await expect(startTestServer({ token: TOKEN, trustProxy: 2 as never })).rejects.toThrow(/options\.trustProxy: a number of hops/);
    await expect(startTestServer({ token: TOKEN, trustProxy: {} as never })).rejects.toThrow(/options\.trustProxy: expected/);
  });
});

describe('SessionStore', () => {
  it('a session expires after its max age (and is forgotten then)', () => {
    let t = 1_000_000;
    const store = new SessionStore(60, () => t);
    const id = store.create();
    expect(store.valid(id)).toBe(true);
    t += 59_999;
    expect(store.valid(id)).toBe(true);
    t += 1;
    expect(store.valid(id)).toBe(false);
    expect(store.size).toBe(0);
    expect(store.valid('not-an-id')).toBe(false);
  });

  it('expired sessions are dropped when a new one is made; delete forgets one', () => {
    let t = 0;
    const store = new SessionStore(10, () => t);
    const a = store.create();
    t = 20_000;
    const b = store.create();
    expect(store.size).toBe(1);
    expect(store.delete(a)).toBe(false);
    expect(store.delete(b)).toBe(true);
    expect(store.valid(b)).toBe(false);
  });
});

describe('a malformed session cookie', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TOKEN });
  });
  afterAll(async () => s?.stop());

  // (these were 500 URIError from decodeURIComponent on every protected route, /v1/session included)
  it.each(['%', '%E0%A4%A', 'abc%zz'])('%s is not a session: 401 on protected routes, signed out, and sign-out clears it', async (value) => {
    const jar = `${cookieName(s)}=${value}`;
    const jobs = await s.call('GET', '/v1/jobs', undefined, { cookie: jar });
    expect(jobs.status, jobs.text).toBe(401);
    expect(jobs.json).toMatchObject({ code: 'Unauthorized' });
    expect(jobs.json.message).toMatch(/^the session cookie is not valid/);
    const state = await s.call('GET', '/v1/session', undefined, { cookie: jar });
    expect(state.status, state.text).toBe(200);
    expect(state.json).toEqual({ tokenRequired: true, signedIn: false });
    const out = await s.call('DELETE', '/v1/session', undefined, { cookie: jar });
    expect(out.status, out.text).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(new RegExp(`^${cookieName(s)}=; Path=/; Max-Age=0;`));
    // with a bearer token the cookie is not looked at
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: jar, authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it('a malformed cookie beside a valid one (two paths) does not hide the valid one', async () => {
    const r = await s.call('POST', '/v1/session', { token: TOKEN });
    const good = r.headers.get('set-cookie')!.split(';')[0];
    expect((await s.call('GET', '/v1/jobs', undefined, { cookie: `${cookieName(s)}=%; ${good}` })).status).toBe(200);
  });
});

describe("the session cookie is the service's own", () => {
  // (both were `brainlatent_session`, Path=/: a browser keeps cookies per host, not per port, so signing in to
  // one service replaced the other's session)
  it('two services on one host (two ports): a client signed in to both stays signed in to both', async () => {
    const a = await startTestServer({ token: TOKEN });
    const b = await startTestServer({ token: OTHER_TEST_TOKEN });
    try {
      // a browser's jar for the host: one cookie per name (and path), whatever the port; a later one of the same name replaces it
      const jar = new Map<string, string>();
      const keep = (setCookie: string) => {
        const [name, value] = setCookie.split(';')[0].split('=');
        jar.set(name, value);
      };
      keep((await a.call('POST', '/v1/session', { token: TOKEN })).headers.get('set-cookie')!);
      keep((await b.call('POST', '/v1/session', { token: OTHER_TEST_TOKEN })).headers.get('set-cookie')!);
      expect(jar.size).toBe(2);
      const header = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      expect((await a.call('GET', '/v1/jobs', undefined, { cookie: header })).status).toBe(200);
      expect((await b.call('GET', '/v1/jobs', undefined, { cookie: header })).status).toBe(200);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('the plugin adds its prefix; sessionCookieName replaces the name, and a bad one is refused at register', async () => {
    const app = Fastify();
    await app.register(brainlatentPlugin, { prefix: '/bl/x', root: process.cwd(), token: TOKEN, defaultMetrics: false, page: false });
    await app.register(brainlatentPlugin, { prefix: '/named', root: process.cwd(), token: TOKEN, defaultMetrics: false, page: false, sessionCookieName: 'lab_session' });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as { port: number }).port;
      const signIn = (prefix: string) => fetch(`http://127.0.0.1:${port}${prefix}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
      expect((await signIn('/bl/x')).headers.get('set-cookie')).toMatch(new RegExp(`^brainlatent_session_${port}_bl_x=[A-Za-z0-9_-]{43}; Path=/bl/x;`));
      const named = (await signIn('/named')).headers.get('set-cookie')!;
      expect(named).toMatch(/^lab_session=[A-Za-z0-9_-]{43}; Path=\/named;/);
      const r = await fetch(`http://127.0.0.1:${port}/named/v1/jobs`, { headers: { cookie: named.split(';')[0] } });
      expect(r.status).toBe(200);
    } finally {
      await app.close();
    }
    const bad = Fastify();
    await expect(bad.register(brainlatentPlugin, { root: process.cwd(), sessionCookieName: 'a b' }).ready()).rejects.toThrow(/options\.sessionCookieName: expected a cookie name/);
    await bad.close().catch(() => {});
  });
});
