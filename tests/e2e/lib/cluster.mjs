// Helpers for the tests of several instances on one bus (redis_bus.test.mjs, scale_out.test.mjs):
// the throwaway redis-server (re-exported from lib/redis.mjs), /readyz polling, and what the
// sockets of a room have received (seqs in arrival order, the badge a client shows).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ON_POSTGRES, startServer, client, newUser, psql, pgDatabase } from './server.mjs';
import { sleep, assertStatus, freePort } from './rest-helpers.mjs';
import { REDIS, startRedis } from './redis.mjs';

// The throwaway redis-server (lib/redis.mjs), for the tests that import it from here.
export { REDIS, startRedis } from './redis.mjs';

// Polls /readyz until it answers `status`; returns the ms it took and the last body.
export async function waitReady(srv, status, withinMs) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < withinMs) {
    last = await client(srv.url).get('/readyz');
    if (last.status === status) return { ms: Date.now() - t0, body: last.body };
    await sleep(50);
  }
  assert.fail(`${srv.url}/readyz not ${status} within ${withinMs} ms: ${last?.status} ${JSON.stringify(last?.body)}`);
}

// The seqs of a room's new_message events a socket got, in arrival order.
export const seqsOf = (c, roomId) => c.all.filter((e) => e.type === 'new_message' && e.data.room_id === roomId).map((e) => e.data.seq);
export const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

// Waits (at most withinMs) until c has n new_message events of the room, then asserts that they
// are seqs 1..n, once each and in order (c: a WsClient, or anything with `all`).
export async function waitSeqs(c, roomId, n, withinMs, what, from = 1) {
  const t0 = Date.now();
  const want = n - from + 1;
  while (seqsOf(c, roomId).length < want && Date.now() - t0 < withinMs) await sleep(20);
  assert.deepEqual(seqsOf(c, roomId), range(from, n), `${what}: every message once, in seq order`);
}

// The badge a client shows for a room: the update with the highest last_seq (for equal
// last_seq the lowest count) — CONTRACT.md "unread_count_update".
export function badge(c, roomId) {
  let best = null;
  for (const e of c.all) {
    if (e.type !== 'unread_count_update' || e.data.room_id !== roomId) continue;
    const d = e.data;
    if (!best || d.last_seq > best.last_seq || (d.last_seq === best.last_seq && d.unread_count < best.unread_count)) best = d;
  }
  return best;
}
export async function waitBadge(c, roomId, expected, withinMs, what) {
  const t0 = Date.now();
  const same = () => { const b = badge(c, roomId); return b && b.unread_count === expected.unread_count && b.last_seq === expected.last_seq; };
  while (!same() && Date.now() - t0 < withinMs) await sleep(20);
  const b = badge(c, roomId);
  assert.ok(same(), `${what}: badge ${JSON.stringify(b)}, expected ${JSON.stringify(expected)}`);
  return b;
}
export async function unreadOf(api, roomId) {
  const r = await api.get('/api/messages/unread-counts');
  assertStatus(r, 200, 'unread-counts');
  return r.body.unread_counts[roomId];
}

// Reads a room's whole history (pages of 200).
export async function history(api, roomId) {
  const out = [];
  for (let after = 0; ;) {
    const res = await api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assertStatus(res, 200, `history of ${roomId}`);
    out.push(...res.body.messages);
    if (!res.body.has_more) return out;
    after = res.body.messages.at(-1).seq;
  }
}

// Two instances on one PostgreSQL database and one Redis, for a suite of their own
// (presence_cluster, reactions_cluster, uploads_cluster): registers the suite's before/after
// hooks and returns the pair, filled once `before` has run (then ready(pair) is called: a
// suite's own hooks are not ordered after it). argsFor(dir): the suite's own flags (the key
// file and the bus are added here). The suite is skipped — pair.skip says why —
// without PARLEY_TEST_DB=postgres or without redis-server.
export const PAIR_SKIP = !ON_POSTGRES ? 'two instances on one PostgreSQL database: needs PARLEY_TEST_DB=postgres'
  : !REDIS ? 'redis-server is not installed' : false;

export function usePair(prefix, argsFor = () => [], ready = () => {}) {
  const pair = { skip: PAIR_SKIP, A: null, B: null, dir: null, redis: null, args: [], clients: [] };
  // A socket closed after the suite.
  pair.track = (c) => { pair.clients.push(c); return c; };
  // A user registered on A, with a REST client on each instance.
  pair.user = async (p) => {
    const u = await newUser(pair.A, p);
    u.id = u.user.id;
    u.a = client(pair.A.url, u.token);
    u.b = client(pair.B.url, u.token);
    return u;
  };
  before(async () => {
    if (pair.skip) return;
    pair.dir = mkdtempSync(join(tmpdir(), `parley-${prefix}-`));
    writeFileSync(join(pair.dir, 'jwt.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const redisPort = await freePort();
    pair.redis = await startRedis(redisPort);
    pair.args = [...argsFor(pair.dir), '--jwt-secret-file', join(pair.dir, 'jwt.key'), '--bus', `redis://127.0.0.1:${redisPort}`];
    // One data directory: one database (lib/server.mjs names it after the directory) for both.
    [pair.A, pair.B] = await Promise.all([startServer({ dir: pair.dir, args: pair.args }), startServer({ dir: pair.dir, args: pair.args })]);
    await Promise.all([waitReady(pair.A, 200, 5000), waitReady(pair.B, 200, 5000)]);
    ready(pair);
  });
  after(async () => {
    await Promise.all(pair.clients.map((c) => c.close().catch(() => {})));
    await Promise.all([pair.A, pair.B].filter(Boolean).map((s) => s.stop()));
    if (pair.redis) await pair.redis.stop();
    if (pair.dir) {
      psql(`DROP DATABASE IF EXISTS ${pgDatabase(pair.dir)} WITH (FORCE)`);
      rmSync(pair.dir, { recursive: true, force: true });
    }
  });
  return pair;
}
