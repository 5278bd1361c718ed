// Reactions across two `parley serve` instances on one PostgreSQL database and one Redis bus
// (CONTRACT.md "More than one instance", docs/decisions.md "Reactions"): a reaction made
// through instance A reaches the members connected to B (sidebar and chatroom sockets) and not
// a non-member there, and back; rounds of a PUT and a DELETE of one reaction racing through the
// two instances leave every member's last `reaction` for it equal to the stored state
// (receivers drop a change older than one they sent: two changes may arrive swapped). Run with
// PARLEY_TEST_DB=postgres (CTest's e2e_pg_reactions_cluster) — skipped otherwise, and when
// redis-server is not installed.
// Run: cd build/test && ctest -R 'postgres_start|e2e_pg_reactions_cluster|postgres_stop'
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, assertStatus } from './lib/rest-helpers.mjs';
import { open, where, settle } from './lib/ws-client.mjs';
import { usePair } from './lib/cluster.mjs';
import { MODEL_SERVER_ARGS } from './lib/model.mjs';

let A, B;
const pair = usePair('react', () => MODEL_SERVER_ARGS, (p) => ({ A, B } = p));
const { skip, track } = pair;
const user = pair.user;

const isReaction = where('reaction', (e) => e.type === 'reaction');
const path = (id, emoji) => `/api/messages/${id}/reactions/${encodeURIComponent(emoji)}`;

test('a reaction made through A reaches the members on B (not a non-member there), and one made through B reaches A', { skip }, async () => {
  const a = await user('rca'); const b = await user('rcb'); const d = await user('rcd');
  const r = await a.a.post('/api/chatrooms', { name: 'cluster', member_ids: [b.id] });
  assertStatus(r, 201, 'room');
  const room = r.body;
  const m = (await a.a.post(`/api/chatrooms/${room.id}/messages`, { content: 'x' })).body;
  const aSide = track(await open(A.url, `/ws?token=${a.token}`));
  const bSide = track(await open(B.url, `/ws?token=${b.token}`));
  const bRoom = track(await open(B.url, `/api/ws?token=${b.token}&room_id=${room.id}`));
  const dSide = track(await open(B.url, `/ws?token=${d.token}`));
  await settle(aSide, bSide, bRoom, dSide);
  const ev = (u, emoji, action) => ({ message_id: m.id, room_id: room.id, user_id: u.id, emoji, action });

  assertStatus(await a.a.put(path(m.id, '👍')), 200, 'PUT on A');
  for (const x of [bSide, bRoom, aSide]) assert.deepEqual((await x.next(isReaction)).data, ev(a, '👍', 'add'));
  const res = await b.b.put(path(m.id, '🇫🇷'));
  assertStatus(res, 200, 'PUT on B');
  assert.deepEqual(res.body.reactions, { '👍': [a.id], '🇫🇷': [b.id] });
  for (const x of [aSide, bSide, bRoom]) assert.deepEqual((await x.next(isReaction)).data, ev(b, '🇫🇷', 'add'));
  assertStatus(await b.b.del(path(m.id, '👍')), 200, 'b removes what it never added: a no-op');
  assertStatus(await a.b.del(path(m.id, '👍')), 200, 'a removes on B');
  for (const x of [aSide, bSide, bRoom]) assert.deepEqual((await x.next(isReaction)).data, ev(a, '👍', 'remove'), 'the no-op sent nothing');
  const hist = await b.a.get(`/api/chatrooms/${room.id}/messages`);
  assert.deepEqual(hist.body.messages[0].reactions, { '🇫🇷': [b.id] }, 'the same state on both instances');
  assert.deepEqual((await b.b.get(`/api/messages/${m.id}`)).body.reactions, { '🇫🇷': [b.id] });
  assert.ok(!dSide.all.some((e) => e.type === 'reaction'), 'the non-member on B heard nothing');
});

test('an add and a remove of one reaction racing through the two instances: every member ends on the stored state', { skip }, async (t) => {
  const a = await user('rsa'); const b = await user('rsb');
  const room = (await a.a.post('/api/chatrooms', { name: 'swap', member_ids: [b.id] })).body;
  const m = (await a.a.post(`/api/chatrooms/${room.id}/messages`, { content: 'x' })).body;
  const watchers = [
    track(await open(A.url, `/ws?token=${b.token}`)), track(await open(B.url, `/ws?token=${b.token}`)),
    track(await open(A.url, `/api/ws?token=${a.token}&room_id=${room.id}`)), track(await open(B.url, `/ws?token=${a.token}`)),
  ];
  await settle(...watchers);
  // Each round: a PUT through one instance and a DELETE through the other at the same time;
  // which commits last is the stored state, and its event may reach an instance first.
  const ROUNDS = 20;
  for (let i = 0; i < ROUNDS; i++) {
    const [put, del] = i % 2 ? [a.a, a.b] : [a.b, a.a];
    const answers = await Promise.all([put.put(path(m.id, '❤️')), del.del(path(m.id, '❤️'))]);
    for (const r of answers) assertStatus(r, 200, `round ${i}`);
  }
  const stored = (await b.b.get(`/api/messages/${m.id}`)).body.reactions;
  const want = stored['❤️'] ? 'add' : 'remove';
  assert.ok(!stored['❤️'] || (stored['❤️'].length === 1 && stored['❤️'][0] === a.id), `stored ${JSON.stringify(stored)}`);
  const last = (x) => x.all.filter((e) => e.type === 'reaction').at(-1)?.data.action;
  const counts = [];
  for (const [i, x] of watchers.entries()) {
    const t0 = Date.now();
    while (last(x) !== want && Date.now() - t0 < 5000) await sleep(20);
    await sleep(200); // a late, older change must not follow
    const got = x.all.filter((e) => e.type === 'reaction');
    assert.equal(last(x), want, `watcher ${i}: last of ${got.map((e) => e.data.action).join(',')} (stored: ${want})`);
    assert.ok(got.length >= 1 && got.length <= 2 * ROUNDS, `watcher ${i}: ${got.length} events`);
    counts.push(got.length);
  }
  t.diagnostic(`${ROUNDS} racing PUT/DELETE pairs, stored ${want}; reaction events per watcher (an older change that arrived late is dropped): ${counts}`);
});
