// Helpers for the tests of several instances on one bus (redis_bus.test.mjs, scale_out.test.mjs):
// the throwaway redis-server (re-exported from lib/redis.mjs), /readyz polling, and what the
// sockets of a room have received (seqs in arrival order, the badge a client shows).
import assert from 'node:assert/strict';
import { client } from './server.mjs';
import { sleep, assertStatus } from './rest-helpers.mjs';

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
