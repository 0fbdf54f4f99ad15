/**
 * Token guessing is slowed (guessLimit.ts). Before, POST /v1/session answered ~3,200 wrong tokens a second from one
 * address (and a bearer route ~1,900): a wrong token is now answered after a delay, and an address with 4 wrong tokens
 * waiting is answered 429 TooManyGuesses at once, its token not compared (else the fast 429 would tell a right token
 * from a wrong one at full speed). A right token is answered at once; another address is not held up.
 */
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { clientKey, GuessLimiter } from '../../ts/server/guessLimit.js';
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers.js';

/** A wait that ends when the test says so. */
function heldWaits() {
  const release: (() => void)[] = [];
  return { wait: () => new Promise<void>((r) => release.push(r)), releaseAll: () => release.splice(0).forEach((r) => r()), get count() { return release.length; } };
}

describe('GuessLimiter', () => {
  it('lets an address have 4 wrong tokens waiting; then answers busy without comparing, until they are answered', async () => {
    const held = heldWaits();
    const limiter = new GuessLimiter(250, 4, held.wait);
    let compared = 0;
    const wrong = () => {
      compared++;
      return false;
    };
    const waiting = [1, 2, 3, 4].map(() => limiter.attempt('203.0.113.9', wrong));
    expect(held.count).toBe(4);
    expect(limiter.waitingNow).toBe(4);
    // the fifth, right or wrong, is busy and not compared
    expect(await limiter.attempt('203.0.113.9', wrong)).toBe('busy');
    expect(await limiter.attempt('203.0.113.9', () => true)).toBe('busy');
    expect(await limiter.attempt('::ffff:203.0.113.9', () => true)).toBe('busy');
    expect(compared).toBe(4);
    // another address is not held up: its right token at once, its wrong one waits
    expect(await limiter.attempt('203.0.113.10', () => true)).toBe('right');
    const other = limiter.attempt('203.0.113.10', wrong);
    expect(held.count).toBe(5);
    held.releaseAll();
    expect(await Promise.all([...waiting, other])).toEqual(['wrong', 'wrong', 'wrong', 'wrong', 'wrong']);
    expect(limiter.waitingNow).toBe(0);
    expect(await limiter.attempt('203.0.113.9', () => true)).toBe('right');
  });

  it('counts IPv6 addresses by their /64, IPv4-mapped ones as IPv4', () => {
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('2001:db8::192.0.2.7')).toBe('2001:db8:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
  });
});

/** Raw HTTP exchanges (Connection: close) from `localAddress`: every request written at once, then each whole answer. */
async function burst(server: TestServer, requests: string[], localAddress = '127.0.0.1'): Promise<{ status: number; headers: string; body: string }[]> {
  const port = Number(new URL(server.url).port);
  const sockets = await Promise.all(
    requests.map(
      () =>
        new Promise<net.Socket>((ok, fail) => {
          const socket = net.connect({ port, host: '127.0.0.1', localAddress });
          socket.once('connect', () => ok(socket));
          socket.once('error', fail);
        }),
    ),
  );
  const answers = sockets.map(
    (socket) =>
      new Promise<string>((ok) => {
        let got = '';
        socket.on('data', (d) => (got += d));
        socket.on('error', () => undefined);
        socket.on('close', () => ok(got));
      }),
  );
  // (in one go: the service takes them in within a few ms, well inside a wrong token's delay)
  sockets.forEach((socket, i) => socket.write(requests[i].replace('\r\n\r\n', `\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)));
  return (await Promise.all(answers)).map((text) => {
    const cut = text.indexOf('\r\n\r\n');
    return { status: Number(text.slice(9, 12)), headers: text.slice(0, cut).toLowerCase(), body: text.slice(cut + 4) };
  });
}

const bearer = (token: string) => `GET /v1/jobs HTTP/1.1\r\nAuthorization: Bearer ${token}\r\n\r\n`;
const signIn = (token: string) => {
  const body = JSON.stringify({ token });
  return `POST /v1/session HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
};
const statuses = (answers: { status: number }[]) => answers.map((a) => a.status).sort();

describe('wrong tokens over HTTP', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ token: TEST_TOKEN });
  });
  afterAll(async () => s?.stop());

  it.each([
    ['a bearer token', bearer],
    ['POST /v1/session', signIn],
  ])('%s: 10 wrong at once from one address are 4 answered 401 late and the others 429 TooManyGuesses', async (_, request) => {
    const answers = await burst(s, Array.from({ length: 10 }, (_, i) => request(`wrong-token-${i}-0123456789`)));
    const codes = statuses(answers);
    expect(codes.filter((c) => c === 401).length).toBeGreaterThanOrEqual(4);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(1);
    expect(codes.every((c) => c === 401 || c === 429)).toBe(true);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.headers).toContain('\r\nretry-after: 1\r\n');
    expect(refused.headers).toContain('\r\nconnection: close\r\n');
    expect(JSON.parse(refused.body)).toEqual({
      error: 'Too Many Requests',
      message: 'too many wrong tokens from this address are waiting for their answer (at most 4 at once; each is answered after 0.25 s): retry after 1 s',
      code: 'TooManyGuesses',
    });
    // once answered, the address may try again: the right token is taken
    expect(statuses(await burst(s, [request(TEST_TOKEN)]))).toEqual([request === bearer ? 200 : 204]);
  });

  it('another address is not held up: its right token is answered 200, its wrong one 401', async () => {
    const [flood, other] = await Promise.all([burst(s, Array.from({ length: 10 }, (_, i) => bearer(`wrong-token-${i}-0123456789`))), burst(s, [bearer(TEST_TOKEN), bearer('wrong-token-other-0123456789')], '127.0.0.2')]);
    expect(statuses(flood)).toContain(429);
    expect(statuses(other)).toEqual([200, 401]);
  });
});
