// Presence (CONTRACT.md "Beyond the seed" → Presence) against a real `parley serve` with a
// short grace (--presence-grace-ms 400): `presence` {user_id, status, last_seen} to the users
// who share a room (on every connection, sidebar and chatroom), never to anyone else nor to the
// user's own connections; a reconnect within the grace says nothing; offline after the grace
// with last_seen = when the last connection closed; never the same status twice in a row;
// GET /api/users/:id/presence (200 / 400 / 401 / 403 / 404); last_seen survives a restart.
// Two instances: presence_cluster.test.mjs.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/presence.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { newUser, startServer, client, ON_POSTGRES, psql, pgDatabase } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, assertStatus, assertError, TIME_RE, createGroupOk as group } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';

const GRACE = 400;
const ARGS = [...NO_COOLDOWN, '--presence-grace-ms', String(GRACE)];
const { server, track } = useSuite();
let S;
before(async () => { S = await server(ARGS); });

const sidebar = async (u, srv = S) => track(await open(srv.url, `/ws?token=${u.token}`));
const chatroom = async (u, roomId) => track(await open(S.url, `/api/ws?token=${u.token}&room_id=${roomId}`));
const presenceOf = (u, status) => where(`presence ${status} of ${u.user.id}`,
  (e) => e.type === 'presence' && e.data.user_id === u.user.id && (!status || e.data.status === status));
const seen = (c, u) => c.all.filter((e) => e.type === 'presence' && (!u || e.data.user_id === u.user.id));

function assertPresence(ev, u, status) {
  assert.equal(ev.type, 'presence');
  assert.deepEqual(Object.keys(ev.data).sort(), ['last_seen', 'status', 'user_id'], 'presence fields');
  assert.equal(ev.data.user_id, u.user.id);
  assert.equal(ev.data.status, status);
  if (ev.data.last_seen !== null) assert.match(ev.data.last_seen, TIME_RE);
}

// Alice and Bob share a room; Dave shares none with either.
async function cast() {
  const alice = await newUser(S, 'pa');
  const bob = await newUser(S, 'pb');
  const dave = await newUser(S, 'pd');
  const room = await group(alice, [bob], 'presence');
  return { alice, bob, dave, room };
}

test('online reaches every connection of a co-member (sidebar and chatroom), not outsiders nor the user\'s own connections; offline after the grace with last_seen', async (t) => {
  const { alice, bob, dave, room } = await cast();
  const bobSide = await sidebar(bob);
  const bobRoom = await chatroom(bob, room.id);
  const daveSide = await sidebar(dave);
  // Bob's own sockets did not hear Bob come online; Alice was not connected: nothing of hers.
  await sleep(200);
  assert.deepEqual(seen(bobSide).concat(seen(bobRoom)), [], 'nothing before alice connects');

  const openedAt = Date.now();
  const aliceSide = await sidebar(alice);
  for (const c of [bobSide, bobRoom]) {
    const ev = await c.next(presenceOf(alice, 'online'), 3000);
    if (c === bobSide) t.diagnostic(`online seen ${Date.now() - openedAt} ms after the connect began`);
    assertPresence(ev, alice, 'online');
    assert.equal(ev.data.last_seen, null, 'never closed a connection before');
  }
  // Alice hears Bob? He came online before she connected: no event for that, but GET says so.
  const r = await alice.api.get(`/api/users/${bob.user.id}/presence`);
  assertStatus(r, 200, 'presence of a co-member');
  assert.deepEqual(r.body, { user_id: bob.user.id, status: 'online', last_seen: null });

  const closedAt = Date.now();
  await aliceSide.close();
  // Within the grace: still online, no event.
  await bobSide.expectNone(presenceOf(alice), GRACE / 2);
  assert.equal((await bob.api.get(`/api/users/${alice.user.id}/presence`)).body.status, 'online', 'online in the grace');
  for (const c of [bobSide, bobRoom]) {
    const ev = await c.next(presenceOf(alice, 'offline'), 3000);
    assertPresence(ev, alice, 'offline');
    if (c === bobSide) t.diagnostic(`offline seen ${Date.now() - closedAt} ms after the close (grace ${GRACE} ms)`);
    const seenAt = Date.parse(ev.data.last_seen);
    assert.ok(Math.abs(seenAt - closedAt) < 300, `last_seen ${ev.data.last_seen} is the close (${new Date(closedAt).toISOString()}), not the grace's end`);
  }
  const after = await bob.api.get(`/api/users/${alice.user.id}/presence`);
  assertStatus(after, 200);
  assert.equal(after.body.status, 'offline');
  assert.match(after.body.last_seen, TIME_RE);
  await sleep(100);
  assert.deepEqual(seen(daveSide), [], 'a user who shares no room hears nothing');
  assert.deepEqual(seen(bobSide, bob).concat(seen(bobRoom, bob)), [], 'no presence of one\'s own');
});

test('a reconnect within the grace sends no event at all', async () => {
  const { alice, bob } = await cast();
  const bobSide = await sidebar(bob);
  let a = await sidebar(alice);
  assertPresence(await bobSide.next(presenceOf(alice, 'online'), 3000), alice, 'online');
  for (let i = 0; i < 3; i++) {  // flapping: closed and reopened well within the grace
    await a.close();
    await sleep(GRACE / 4);
    a = await sidebar(alice);
  }
  await bobSide.expectNone(presenceOf(alice), GRACE * 2);
  assert.equal((await bob.api.get(`/api/users/${alice.user.id}/presence`)).body.status, 'online');
  await a.close();
  assertPresence(await bobSide.next(presenceOf(alice, 'offline'), 3000), alice, 'offline');
  assert.deepEqual(seen(bobSide, alice).map((e) => e.data.status), ['online', 'offline'], 'exactly one online and one offline');
});

test('two connections of one user: one online, one offline, never the same status twice in a row', async () => {
  const { alice, bob, room } = await cast();
  const bobSide = await sidebar(bob);
  const a1 = await sidebar(alice);
  const a2 = await chatroom(alice, room.id);
  const a3 = await sidebar(alice);
  await sleep(200);
  await a1.close();
  await a3.close();
  await sleep(GRACE * 2);  // a2 still open: online all along
  await a2.close();
  await sleep(GRACE * 2);
  const statuses = bobSide.all.filter((e) => e.type === 'presence' && e.data.user_id === alice.user.id).map((e) => e.data.status);
  assert.deepEqual(statuses, ['online', 'offline']);
  // Back again: online once more (a transition), then offline.
  const a4 = await sidebar(alice);
  await a4.close();
  await sleep(GRACE * 2);
  const again = bobSide.all.filter((e) => e.type === 'presence' && e.data.user_id === alice.user.id).map((e) => e.data.status);
  assert.deepEqual(again, ['online', 'offline', 'online', 'offline']);
});

test('GET /api/users/:id/presence: self and co-members 200 (last_seen null until the first close); 403 without a shared room (a removed member too); 404; 400; 401', async () => {
  const { alice, bob, dave, room } = await cast();
  const self = await dave.api.get(`/api/users/${dave.user.id}/presence`);
  assertStatus(self, 200, 'own presence');
  assert.deepEqual(self.body, { user_id: dave.user.id, status: 'offline', last_seen: null });
  const never = await alice.api.get(`/api/users/${bob.user.id}/presence`);
  assert.deepEqual(never.body, { user_id: bob.user.id, status: 'offline', last_seen: null }, 'never connected');
  assertError(await alice.api.get(`/api/users/${dave.user.id}/presence`), 403, 'forbidden', 'no shared room');
  assertError(await dave.api.get(`/api/users/${alice.user.id}/presence`), 403, 'forbidden', 'no shared room');
  assertError(await alice.api.get('/api/users/999999999/presence'), 404, 'not_found', 'unknown user');
  assertError(await alice.api.get('/api/users/abc/presence'), 400, 'invalid_request', 'malformed id');
  assertError(await client(S.url).get(`/api/users/${bob.user.id}/presence`), 401, 'unauthorized', 'no token');
  assertError(await client(S.url, 'not.a.token').get(`/api/users/${bob.user.id}/presence`), 401, 'unauthorized', 'bad token');

  // Bob removed from the only room they shared: 403 both ways, and no event reaches him.
  assertStatus(await alice.api.del(`/api/chatrooms/${room.id}/members/${bob.user.id}`), 204, 'remove bob');
  assertError(await bob.api.get(`/api/users/${alice.user.id}/presence`), 403, 'forbidden', 'removed member');
  assertError(await alice.api.get(`/api/users/${bob.user.id}/presence`), 403, 'forbidden', 'removed member');
  const bobSide = await sidebar(bob);
  const a = await sidebar(alice);
  await a.close();
  await sleep(GRACE * 2);
  assert.deepEqual(seen(bobSide, alice), [], 'a removed member hears nothing');
});

test('last_seen is stored: it survives a restart, also for a connection closed by the shutdown (everyone offline after it)', async (t) => {
  let srv = await startServer({ args: ARGS });
  const dir = srv.dir;
  t.after(async () => {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
    if (ON_POSTGRES) psql(`DROP DATABASE IF EXISTS ${pgDatabase(dir)} WITH (FORCE)`);
  });
  const alice = await newUser(srv, 'pr');
  const bob = await newUser(srv, 'ps');
  await alice.api.post('/api/chatrooms', { name: 'r', member_ids: [bob.user.id] });
  const a = await open(srv.url, `/ws?token=${alice.token}`);
  await a.close();
  await sleep(GRACE * 2);
  const before = await bob.api.get(`/api/users/${alice.user.id}/presence`);
  assertStatus(before, 200);
  assert.equal(before.body.status, 'offline');
  assert.match(before.body.last_seen, TIME_RE);
  // Bob still connected when the server stops: his connection's close at shutdown is stored.
  const b = await open(srv.url, `/ws?token=${bob.token}`);
  assert.equal((await alice.api.get(`/api/users/${bob.user.id}/presence`)).body.last_seen, null);
  const stoppedAt = Date.now();
  await srv.stop();
  await b.closed;
  srv = await startServer({ dir, args: ARGS });
  const bobApi = client(srv.url, bob.token);
  const after = await bobApi.get(`/api/users/${alice.user.id}/presence`);
  assertStatus(after, 200, 'after the restart');
  assert.deepEqual(after.body, before.body, 'the same last_seen after the restart');
  const bobNow = await client(srv.url, alice.token).get(`/api/users/${bob.user.id}/presence`);
  assert.equal(bobNow.body.status, 'offline', 'nobody is online after a restart until they connect');
  assert.ok(Math.abs(Date.parse(bobNow.body.last_seen) - stoppedAt) < 2000, `bob's last_seen ${bobNow.body.last_seen} is the shutdown`);
});
