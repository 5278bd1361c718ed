// Presence across two `parley serve` instances on ONE PostgreSQL database and ONE Redis
// (CONTRACT.md "Presence", "More than one instance"; docs/decisions.md "Presence"), with a
// short grace (--presence-grace-ms 400). Run with PARLEY_TEST_DB=postgres (CTest's
// e2e_pg_presence_cluster) — skipped otherwise, and when redis-server is not installed.
//  1. a user connected on A and B stays online when A's connection closes; closing B's → one
//     offline, seen by co-members on both instances, with last_seen = that close; one online
//     before it, never the same status twice;
//  2. closing on A and reopening on B within the grace: no event at all;
//  3. GET /api/users/:id/presence answers the same on both instances (online, offline);
//  4. an instance killed (SIGKILL) with a user's only connection: the user goes offline on the
//     other instance after its lease (6 s), one sweep (2 s) and the grace.
// Run: cd build/test && ctest -R 'postgres_start|e2e_pg_presence_cluster|postgres_stop'
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, assertStatus, TIME_RE } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';
import { usePair } from './lib/cluster.mjs';

const GRACE = 400;
let A, B;
const pair = usePair('presence', () => ['--ws-cooldown-ms', '0', '--presence-grace-ms', String(GRACE)], (p) => ({ A, B } = p));
const { skip, track } = pair;
const user = pair.user;

// Alice, and Bob and Carol who share a room with her; Dave who shares none.
async function cast() {
  const [alice, bob, carol, dave] = await Promise.all([user('qa'), user('qb'), user('qc'), user('qd')]);
  assertStatus(await alice.a.post('/api/chatrooms', { name: 'p', member_ids: [bob.id, carol.id] }), 201);
  return { alice, bob, carol, dave };
}
const sidebar = async (u, srv) => track(await open(srv.url, `/ws?token=${u.token}`));
const presenceOf = (u, status) => where(`presence ${status} of ${u.id}`,
  (e) => e.type === 'presence' && e.data.user_id === u.id && (!status || e.data.status === status));
const statuses = (c, u) => c.all.filter((e) => e.type === 'presence' && e.data.user_id === u.id).map((e) => e.data.status);

async function metric(srv, series) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  return null;
}

async function samePresence(viewer, u) {
  const [ra, rb] = await Promise.all([viewer.a.get(`/api/users/${u.id}/presence`), viewer.b.get(`/api/users/${u.id}/presence`)]);
  assertStatus(ra, 200, 'presence on A');
  assertStatus(rb, 200, 'presence on B');
  assert.deepEqual(ra.body, rb.body, 'both instances answer the same');
  return ra.body;
}

test('online while connected on either instance; offline once the last connection anywhere closed and the grace passed', { skip }, async () => {
  const { alice, bob, carol, dave } = await cast();
  const bobB = await sidebar(bob, B);
  const carolA = await sidebar(carol, A);
  const daveA = await sidebar(dave, A);
  const aliceA = await sidebar(alice, A);
  for (const c of [bobB, carolA]) assert.equal((await c.next(presenceOf(alice, 'online'), 3000)).data.last_seen, null);
  const aliceB = await sidebar(alice, B);
  assert.deepEqual(await samePresence(bob, alice), { user_id: alice.id, status: 'online', last_seen: null });

  await aliceA.close();  // B still holds one
  await bobB.expectNone(presenceOf(alice, 'offline'), GRACE * 3);
  assert.equal((await samePresence(bob, alice)).status, 'online');

  const closedAt = Date.now();
  await aliceB.close();
  for (const c of [bobB, carolA]) {
    const ev = await c.next(presenceOf(alice, 'offline'), 5000);
    assert.ok(Math.abs(Date.parse(ev.data.last_seen) - closedAt) < 500, `last_seen ${ev.data.last_seen} is B's close`);
  }
  const off = await samePresence(carol, alice);
  assert.equal(off.status, 'offline');
  assert.match(off.last_seen, TIME_RE);
  await sleep(200);
  for (const c of [bobB, carolA]) assert.deepEqual(statuses(c, alice), ['online', 'offline'], 'one transition each way');
  assert.deepEqual(statuses(daveA, alice), [], 'no room shared: nothing');
  for (const srv of [A, B]) assert.equal(await metric(srv, 'parley_presence_shared'), 1, 'decided in Redis');
});

test('closing on A and reopening on B within the grace sends nothing', { skip }, async () => {
  const { alice, bob } = await cast();
  const bobA = await sidebar(bob, A);
  const aliceA = await sidebar(alice, A);
  await bobA.next(presenceOf(alice, 'online'), 3000);
  await aliceA.close();
  await sleep(GRACE / 4);
  const aliceB = await sidebar(alice, B);
  await bobA.expectNone(presenceOf(alice), GRACE * 3);
  assert.equal((await samePresence(bob, alice)).status, 'online');
  await aliceB.close();
  await bobA.next(presenceOf(alice, 'offline'), 5000);
  assert.deepEqual(statuses(bobA, alice), ['online', 'offline']);
});

test('an instance killed with a user\'s only connection: offline on the other after its lease and the grace', { skip }, async (t) => {
  const { alice, bob } = await cast();
  const bobA = await sidebar(bob, A);
  const aliceB = await open(B.url, `/ws?token=${alice.token}`);  // dies with B
  await bobA.next(presenceOf(alice, 'online'), 3000);
  const killedAt = Date.now();
  await B.stop('SIGKILL');
  await aliceB.closed;
  const ev = await bobA.next(presenceOf(alice, 'offline'), 15000);
  const took = Date.now() - killedAt;
  t.diagnostic(`offline ${took} ms after the kill (lease 6000, sweep every 2000, grace ${GRACE})`);
  assert.ok(took >= GRACE, `offline ${took} ms after the kill: not before the grace`);
  assert.ok(took < 6000 + 2000 + GRACE + 2000, `offline ${took} ms after the kill: within lease + sweep + grace`);
  assert.match(ev.data.last_seen, TIME_RE);
  const r = await bob.a.get(`/api/users/${alice.id}/presence`);
  assert.equal(r.body.status, 'offline');
  assert.deepEqual(statuses(bobA, alice), ['online', 'offline']);
});
