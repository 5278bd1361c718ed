// Two `parley serve` instances on ONE PostgreSQL database and ONE Redis bus (CONTRACT.md "More
// than one instance"): a client on either instance gets every event it would get if all clients
// were on one instance, and every rule (seq order, no duplicate, no loss across reconnect, the
// unread invariant) holds across them. Run with PARLEY_TEST_DB=postgres (CTest's
// e2e_pg_scale_out, on the fixture's PostgreSQL) — skipped otherwise, and when redis-server is
// not installed. The file starts its own redis-server on a free port and both instances with
// one database and one --jwt-secret-file; all are stopped after the file, also when a test fails.
//  1. every event type across instances, to the right sockets and never to a non-member:
//     new_message (plain and echo), message_read, unread_count_update, a member's badge when
//     added, a chatroom socket of a removed member closed 1008 `not a member` (room_updated and
//     room_left: a todo, not built yet);
//  2. the randomized model of read state (lib/model.mjs, as model.test.mjs) with every user's
//     REST calls alternating between the instances and its sidebars spread over both;
//  3. resume on the other instance: a chatroom socket (after_seq) and a sidebar (its snapshot is
//     its position) leave A mid-traffic and come back on B: nothing lost, nothing twice;
//  4. one instance killed with SIGKILL mid-traffic: the survivor serves on, every message
//     answered 201 is stored, the dead instance's clients resume on the survivor;
//  5. Redis restarted in the middle of a model run: every socket ends with every message and
//     the exact badges.
// Run: cd build/test && ctest -R 'postgres_start|e2e_pg_scale_out|postgres_stop'
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ON_POSTGRES, startServer, client, newUser, psql, pgDatabase } from './lib/server.mjs';
import { sleep, assertStatus, freePort, retryShed } from './lib/rest-helpers.mjs';
import { open, probeUpgrade, where } from './lib/ws-client.mjs';
import { REDIS, startRedis, waitReady, seqsOf, range, waitSeqs, badge, waitBadge, unreadOf, history } from './lib/cluster.mjs';
import { DEFAULT_SEED, MODEL_SERVER_ARGS, runModel } from './lib/model.mjs';

const skip = !ON_POSTGRES ? 'two instances on one PostgreSQL database: needs PARLEY_TEST_DB=postgres'
  : !REDIS ? 'redis-server is not installed' : false;
const MODEL_STEPS = Number(process.env.PARLEY_SCALE_OUT_STEPS || 300);
const REPRODUCE = `PARLEY_SCALE_OUT_STEPS=${MODEL_STEPS}, e2e/scale_out.test.mjs`;

let dir, args, redisPort, redis, A, B;
const clients = [];
const track = (c) => { clients.push(c); return c; };

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'parley-scale-'));
  writeFileSync(join(dir, 'jwt.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  args = [...MODEL_SERVER_ARGS, '--jwt-secret-file', join(dir, 'jwt.key'), '--bus', `redis://127.0.0.1:${redisPort}`];
  // One data directory: one database (lib/server.mjs names it after the directory) for both.
  [A, B] = await Promise.all([startServer({ dir, args }), startServer({ dir, args })]);
  await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all([A, B].filter(Boolean).map((s) => s.stop()));
  if (redis) await redis.stop();
  if (dir) {
    psql(`DROP DATABASE IF EXISTS ${pgDatabase(dir)} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  }
});

// A user registered on A, with a REST client on each instance.
async function user(prefix) {
  const u = await newUser(A, prefix);
  u.id = u.user.id;
  u.a = client(A.url, u.token);
  u.b = client(B.url, u.token);
  return u;
}
async function group(owner, members, name) {
  const r = await owner.a.post('/api/chatrooms', { name, member_ids: members.map((m) => m.id) });
  assertStatus(r, 201, 'create room');
  return r.body;
}
// A send answered 201 (one shed by a busy server is sent again: it stored nothing).
let shed = 0;
const onShed = () => { shed++; };
async function send(api, roomId, content) {
  const r = await retryShed(() => api.post(`/api/chatrooms/${roomId}/messages`, { content }), { onShed });
  assertStatus(r, 201, `send in ${roomId}`);
  return r.body;
}
const sidebar = async (srv, u) => track(await open(srv.url, `/ws?token=${u.token}`));
const chatroom = async (srv, u, roomId, afterSeq) => track(await open(srv.url,
  `/api/ws?token=${u.token}&room_id=${roomId}${afterSeq === undefined ? '' : `&after_seq=${afterSeq}`}`));
// A socket's view of several connections one after the other (a client that reconnected).
const union = (...cs) => ({ get all() { return cs.flatMap((c) => c.all); } });
// Every event a socket got that concerns the room.
const ofRoom = (c, roomId) => c.all.filter((e) => e.data && e.data.room_id === roomId);
const snapshotOf = (c, roomId) => c.next(where(`snapshot of ${roomId}`, (e) => e.type === 'unread_count_update' && e.data.room_id === roomId), 5000);
const seqOf = (c, roomId, seq) => c.next(where(`new_message ${roomId}#${seq}`, (e) => e.type === 'new_message' && e.data.room_id === roomId && e.data.seq === seq), 5000);

test('every event type reaches the right sockets across instances, and never a non-member', { skip }, async () => {
  const alice = await user('sa');
  const bob = await user('sb');
  const carol = await user('sc');
  const dave = await user('sd'); // never a member
  const erin = await user('se'); // added later
  const room = await group(alice, [bob, carol], 'across');

  const aliceA = await sidebar(A, alice);
  const aliceB = await sidebar(B, alice); // a second device on the other instance
  const bobB = await sidebar(B, bob);
  const bobRoomB = await chatroom(B, bob, room.id);
  const carolA = await sidebar(A, carol);
  const daveA = await sidebar(A, dave);
  const daveB = await sidebar(B, dave);
  const erinB = await sidebar(B, erin);
  // A non-member's chatroom socket is refused before the upgrade, on either instance.
  for (const srv of [A, B]) {
    const p = await probeUpgrade(srv.url, `/api/ws?token=${dave.token}&room_id=${room.id}`);
    assert.equal(p.status, 403, `dave's chatroom socket on ${srv === A ? 'A' : 'B'}`);
  }
  // Each member sidebar's position: the snapshot (last_seq 0) before any send.
  for (const c of [aliceA, aliceB, bobB, carolA]) assert.equal((await snapshotOf(c, room.id)).data.last_seq, 0);

  // 1–4 over REST on A: plain to bob (on B) and carol (on A), echoes on both of alice's sidebars.
  for (let i = 1; i <= 4; i++) await send(alice.a, room.id, `rest ${i}`);
  // 5 over WebSocket on alice's sidebar on A: the ack there, an echo on B, plain to the others.
  const ack = await retryShed(() => aliceA.request({ room_id: room.id, content: 'ws 5', client_msg_id: 'scale-ws-5' }), { onShed });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  assert.equal(ack.data.message.seq, 5);
  // 6 over REST on B.
  await send(alice.b, room.id, 'rest 6 via B');
  const stored = await history(alice.a, room.id);
  const frames = (c) => ofRoom(c, room.id).filter((e) => e.type === 'new_message').map((e) => [e.data.seq, e.data.id, e.data.content, e.data.echo === true]);
  const expect = (seqs, echo) => stored.filter((m) => seqs.includes(m.seq)).map((m) => [m.seq, m.id, m.content, echo]);
  await waitSeqs(bobB, room.id, 6, 5000, 'bob sidebar on B');
  await waitSeqs(bobRoomB, room.id, 6, 5000, 'bob chatroom on B');
  await waitSeqs(carolA, room.id, 6, 5000, 'carol sidebar on A');
  await waitSeqs(aliceB, room.id, 6, 5000, 'alice sidebar on B (echoes)');
  await seqOf(aliceA, room.id, 6);
  assert.deepEqual(frames(bobB), expect(range(1, 6), false), 'bob on B: the stored messages, plain');
  assert.deepEqual(frames(bobRoomB), expect(range(1, 6), false), 'bob chatroom on B');
  assert.deepEqual(frames(carolA), expect(range(1, 6), false), 'carol on A');
  assert.deepEqual(frames(aliceB), expect(range(1, 6), true), 'alice on B: every one an echo (the WS send came from A)');
  assert.deepEqual(frames(aliceA), expect([1, 2, 3, 4, 6], true), 'alice on A: echoes, none for the send on this very socket');
  await waitBadge(bobB, room.id, { unread_count: 6, last_seq: 6 }, 3000, 'bob on B');
  await waitBadge(carolA, room.id, { unread_count: 6, last_seq: 6 }, 3000, 'carol on A');
  assert.equal(badge(bobB, room.id).total_unread, 6);

  // Reads: bob on A (his badge on B, ticks to alice on B and carol on A); carol on B.
  assertStatus(await bob.a.post(`/api/messages/${stored[3].id}/read`), 200, 'bob reads #4 on A');
  await waitBadge(bobB, room.id, { unread_count: 2, last_seq: 6 }, 3000, 'bob on B after his read on A');
  for (const [name, c] of [['alice on B', aliceB], ['alice on A', aliceA], ['carol on A', carolA], ['bob chatroom on B', bobRoomB]]) {
    const r = await c.next(where('message_read by bob', (e) => e.type === 'message_read' && e.data.reader_id === bob.id), 3000);
    assert.deepEqual([r.data.room_id, r.data.up_to_seq, r.data.message_id], [room.id, 4, stored[3].id], `${name}: message_read`);
    assert.ok(r.data.read_status.some((x) => x.user_id === bob.id), `${name}: read_status names bob`);
  }
  assertStatus(await carol.b.post(`/api/chatrooms/${room.id}/mark-all-read`), 200, 'carol marks all read on B');
  await waitBadge(carolA, room.id, { unread_count: 0, last_seq: 6 }, 3000, 'carol on A after her read on B');
  const r2 = await aliceA.next(where('message_read by carol', (e) => e.type === 'message_read' && e.data.reader_id === carol.id), 3000);
  assert.equal(r2.data.up_to_seq, 6);
  assert.equal(badge(bobB, room.id).unread_count, 2, "carol's read leaves bob's badge");

  // Erin added on A: her sidebar on B hears of the room (its badge, at the room's last_seq), then
  // gets its messages from then on and nothing from before.
  assert.deepEqual(ofRoom(erinB, room.id), [], 'erin, not yet a member, got none of the room\'s events');
  assertStatus(await alice.a.post(`/api/chatrooms/${room.id}/members`, { user_id: erin.id }), 200, 'add erin on A');
  const joined = await snapshotOf(erinB, room.id);
  assert.deepEqual([joined.data.unread_count, joined.data.last_seq], [0, 6], "erin's badge on B when she is added on A");
  await send(alice.a, room.id, 'seven');
  await seqOf(erinB, room.id, 7);
  await waitBadge(erinB, room.id, { unread_count: 1, last_seq: 7 }, 3000, 'erin on B (joined at last_seq 6)');
  assert.deepEqual(seqsOf(erinB, room.id), [7], 'erin got nothing from before her join');

  // Bob removed on A: his chatroom socket on B is closed 1008, his sidebar on B gets nothing of
  // the room afterwards.
  assertStatus(await alice.a.del(`/api/chatrooms/${room.id}/members/${bob.id}`), 204, 'remove bob on A');
  const closed = await Promise.race([bobRoomB.closed, sleep(3000).then(() => null)]);
  assert.ok(closed, "bob's chatroom socket on B closed");
  assert.deepEqual([closed.code, closed.reason], [1008, 'not a member'], "bob's chatroom socket close");
  const bobBefore = ofRoom(bobB, room.id).length;
  await send(alice.a, room.id, 'eight');
  await send(alice.b, room.id, 'nine');
  for (const c of [erinB, carolA, aliceB]) await seqOf(c, room.id, 9);
  assertStatus(await erin.a.post(`/api/chatrooms/${room.id}/mark-all-read`), 200, 'erin reads on A');
  await aliceB.next(where('message_read by erin', (e) => e.type === 'message_read' && e.data.reader_id === erin.id), 3000);
  await sleep(300); // the same fan-out as the sockets above: a stray frame would be here by now
  assert.deepEqual(ofRoom(bobB, room.id).slice(bobBefore), [], "bob's sidebar on B after his removal: nothing of the room");
  assertStatus(await bob.b.get(`/api/chatrooms/${room.id}/messages`), 403, 'bob is no longer a member');
  // Dave was never a member: not one of the room's events on either instance.
  for (const [name, c] of [['A', daveA], ['B', daveB]]) {
    assert.deepEqual(ofRoom(c, room.id), [], `dave (non-member) on ${name} got the room's events`);
  }
  assert.equal(await unreadOf(erin.b, room.id), 0, "erin's unread per REST");
  assert.equal(await unreadOf(carol.a, room.id), 3, "carol's unread per REST");
  await waitBadge(carolA, room.id, { unread_count: 3, last_seq: 9 }, 3000, 'carol on A');
});

// CONTRACT.md "Beyond the seed": membership events. The server does not send them yet (on one
// instance either): this runs and reports as a todo until they are built.
test('room_updated and room_left across instances', { skip, todo: 'room_updated/room_left are not built yet (CONTRACT.md "Membership events")' }, async () => {
  const alice = await user('sk');
  const bob = await user('sl');
  const erin = await user('sm');
  const room = await group(alice, [bob], 'membership');
  const bobB = await sidebar(B, bob);
  const erinB = await sidebar(B, erin);
  await snapshotOf(bobB, room.id);
  const updated = (c, pred) => c.next(where('room_updated', (e) => e.type === 'room_updated' && e.data.room_id === room.id && pred(e.data)), 2000);
  assertStatus(await alice.a.post(`/api/chatrooms/${room.id}/members`, { user_id: erin.id }), 200, 'add erin on A');
  for (const c of [erinB, bobB]) await updated(c, (d) => d.members.some((m) => m.id === erin.id));
  assertStatus(await alice.a.del(`/api/chatrooms/${room.id}/members/${erin.id}`), 204, 'remove erin on A');
  await erinB.next(where('room_left', (e) => e.type === 'room_left' && e.data.room_id === room.id), 3000);
  await updated(bobB, (d) => !d.members.some((m) => m.id === erin.id));
});

test(`the model of read state with its users spread over both instances (seed ${DEFAULT_SEED}, ${MODEL_STEPS} steps)`, { skip, timeout: 120_000 },
  (t) => runModel(t, { caseName: 'few', nUsers: 6, steps: MODEL_STEPS, servers: [A, B], reproduce: REPRODUCE }));

test('resume on the other instance: a chatroom socket and a sidebar leave A mid-traffic and come back on B', { skip }, async () => {
  const alice = await user('sf');
  const bob = await user('sg');
  const room = await group(alice, [bob], 'resume');
  const roomA = await chatroom(A, bob, room.id);
  const sideA = await sidebar(A, bob);
  assert.equal((await snapshotOf(sideA, room.id)).data.last_seq, 0);
  const N = 60;
  let sent = 0;
  const sender = (async () => {
    // Two at a time, alternating between the instances.
    while (sent < N) {
      const k = sent;
      sent += 2;
      await Promise.all([send(alice.a, room.id, `r${k + 1}`), send(alice.b, room.id, `r${k + 2}`)]);
      if (sent === 10) assertStatus(await bob.b.post(`/api/chatrooms/${room.id}/mark-all-read`), 200, 'bob reads the first 10');
    }
  })();
  const failed = sender.then(() => null, (e) => e);
  const waitSent = async (n) => {
    for (const t0 = Date.now(); sent < n && Date.now() - t0 < 20_000;) {
      const e = await Promise.race([failed, sleep(5).then(() => null)]);
      if (e) throw e;
    }
    assert.ok(sent >= n, `${sent} of ${n} sends within 20 s`);
  };
  await waitSent(20);
  // The chatroom socket goes away without a closing handshake (a lost connection).
  roomA.ws.terminate();
  await roomA.closed;
  const last = seqsOf(roomA, room.id).at(-1) ?? 0;
  const roomB = await chatroom(B, bob, room.id, last);
  await waitSent(36);
  await sideA.close();
  const sideSeen = seqsOf(sideA, room.id);
  const sideB = await sidebar(B, bob);
  await sender;
  // Chatroom: what A delivered, then from after_seq on B: 1..N once each.
  await waitSeqs(union(roomA, roomB), room.id, N, 5000, `chatroom A (up to ${last}) then B (after_seq=${last})`);
  // Sidebar: the snapshot on B is its position — every seq above its last_seq, none at or below.
  const snap = sideB.all.find((e) => e.type === 'unread_count_update' && e.data.room_id === room.id);
  assert.ok(snap, 'a snapshot on B');
  assert.equal(sideB.all.findIndex((e) => e.data?.room_id === room.id), sideB.all.indexOf(snap), 'the snapshot comes before the room\'s messages');
  const L = snap.data.last_seq;
  assert.deepEqual(sideSeen, range(1, sideSeen.length), 'sidebar on A: in order, no gap');
  assert.ok(L >= sideSeen.length && L <= N, `snapshot last_seq ${L} (A had delivered ${sideSeen.length})`);
  // Bob read the first 10 before the 11th was sent (the sender waits for it), and none after.
  assert.equal(snap.data.unread_count, L - 10, `snapshot badge at last_seq ${L}`);
  await waitSeqs(sideB, room.id, N, 5000, `sidebar on B after its snapshot (last_seq ${L})`, L + 1);
  await waitBadge(sideB, room.id, { unread_count: N - 10, last_seq: N }, 3000, 'sidebar on B');
  assert.equal(await unreadOf(bob.a, room.id), N - 10);
  console.log(`# resume: chatroom left A after seq ${last}, sidebar after ${sideSeen.length}, its snapshot on B at last_seq ${L}`);
});

test('a Redis restart in the middle of a model run: every socket ends with every message and the exact badges', { skip, timeout: 120_000 }, (t) => {
  const steps = Math.max(30, Math.round(MODEL_STEPS / 3));
  const from = Math.round(steps / 3);
  return runModel(t, {
    caseName: 'few', nUsers: 6, steps, servers: [A, B], seed: (DEFAULT_SEED + 1) >>> 0,
    reproduce: `${REPRODUCE} (this run's seed is PARLEY_MODEL_SEED + 1: set PARLEY_MODEL_SEED=${DEFAULT_SEED})`,
    outage: {
      from, to: from + 8,
      async begin() {
        await redis.stop();
        const [ra, rb] = await Promise.all([waitReady(A, 503, 5000), waitReady(B, 503, 5000)]);
        t.diagnostic(`redis-server killed before step ${from}: /readyz 503 after ${ra.ms} ms (A), ${rb.ms} ms (B)`);
      },
      async end() {
        redis = await startRedis(redisPort);
        const [ra, rb] = await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
        t.diagnostic(`redis-server back after step ${from + 8}: /readyz 200 after ${ra.ms} ms (A), ${rb.ms} ms (B)`);
      },
    },
  });
});

// A sidebar's position in a room it leaves and joins again is the join: nothing sent while its
// user was out, also when the leave happened while Redis was away (B heard of it only by the
// resync after the outage).
for (const outage of [false, true]) {
  test(`a member who left and is added again gets nothing sent while out${outage ? ' (left while Redis was away)' : ''}`, { skip }, async () => {
    const alice = await user('sn');
    const uma = await user('so');
    const room = await group(alice, [uma], outage ? 'rejoin-outage' : 'rejoin');
    const side = await sidebar(B, uma);
    await snapshotOf(side, room.id);
    for (let i = 1; i <= 3; i++) await send(alice.a, room.id, `in ${i}`);
    await waitSeqs(side, room.id, 3, 5000, 'uma on B while a member');
    if (outage) { await redis.stop(); await Promise.all([waitReady(A, 503, 5000), waitReady(B, 503, 5000)]); }
    assertStatus(await uma.a.del(`/api/chatrooms/${room.id}/members/${uma.id}`), 204, 'uma leaves on A');
    if (outage) { redis = await startRedis(redisPort); await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]); }
    await send(alice.a, room.id, 'while out 4');
    await send(alice.b, room.id, 'while out 5');
    assertStatus(await alice.a.post(`/api/chatrooms/${room.id}/members`, { user_id: uma.id }), 200, 'uma added again on A');
    await send(alice.a, room.id, 'back 6');
    await seqOf(side, room.id, 6);
    await sleep(200);
    assert.deepEqual(seqsOf(side, room.id), [1, 2, 3, 6], "uma's sidebar on B: nothing of what was sent while she was out");
    await waitBadge(side, room.id, { unread_count: 1, last_seq: 6 }, 3000, 'uma on B after the re-join');
  });
}

test('one instance killed with SIGKILL mid-traffic: the survivor serves on, nothing answered 201 is lost, clients resume on it', { skip }, async () => {
  const alice = await user('sh');
  const bob = await user('si');
  const carol = await user('sj');
  const room = await group(alice, [bob, carol], 'crash');
  const bobRoomA = await chatroom(A, bob, room.id);   // clients of the instance that dies
  const bobSideA = await sidebar(A, bob);
  const carolRoomB = await chatroom(B, carol, room.id); // clients of the survivor
  const carolSideB = await sidebar(B, carol);
  for (const c of [bobSideA, carolSideB]) assert.equal((await snapshotOf(c, room.id)).data.last_seq, 0);

  const acked = new Map(); // id → seq, every send answered 201
  let failedOnA = 0;
  let running = true;
  const loop = async (api, tag, dies) => {
    for (let i = 1; running; i++) {
      let r;
      try {
        r = await retryShed(() => api.post(`/api/chatrooms/${room.id}/messages`, { content: `${tag}${i}` }), { onShed });
      } catch (e) {
        if (!dies) throw e;
        failedOnA++; // the connection to the killed instance: unknown whether it was stored
        await sleep(20);
        continue;
      }
      assertStatus(r, 201, `send via ${tag}`);
      acked.set(r.body.id, r.body.seq);
    }
  };
  const senders = [loop(alice.a, 'a', true), loop(alice.b, 'b', false), loop(alice.b, 'c', false)];
  // Until `acked` has n more messages, or a sender failed (deadline 20 s).
  const failed = Promise.race(senders).then(() => null, (e) => e);
  const until = async (n) => {
    for (const t0 = Date.now(); acked.size < n && Date.now() - t0 < 20_000;) {
      const e = await Promise.race([failed, sleep(5).then(() => null)]);
      if (e) throw e;
    }
    assert.ok(acked.size >= n, `${acked.size} of ${n} sends answered within 20 s`);
  };
  let killedAfter, atKill;
  try {
    await until(30);
    killedAfter = acked.size;
    A.proc.kill('SIGKILL');
    const exit = await A.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const byeA = await Promise.race([bobRoomA.closed, sleep(5000).then(() => null)]);
    assert.ok(byeA, "the dead instance's sockets are gone");
    // The survivor keeps serving: REST, and its sockets keep getting messages.
    atKill = seqsOf(carolRoomB, room.id).length;
    await until(killedAfter + 30);
  } finally {
    running = false;
    await Promise.allSettled(senders);
  }
  await Promise.all(senders);
  assertStatus(await alice.b.get('/api/me'), 200, 'REST on the survivor');
  assert.equal((await client(B.url).get('/readyz')).status, 200, 'the survivor is ready');

  const stored = await history(carol.b, room.id);
  const N = stored.length;
  assert.deepEqual(stored.map((m) => m.seq), range(1, N), 'history: seqs 1..N');
  const storedIds = new Set(stored.map((m) => m.id));
  const lost = [...acked].filter(([id]) => !storedIds.has(id));
  assert.deepEqual(lost, [], 'every message answered 201 is in the history');
  for (const m of stored) if (acked.has(m.id)) assert.equal(acked.get(m.id), m.seq, `the seq answered for ${m.id}`);

  // The survivor's own clients: everything, in order, the dead instance's last sends included.
  await waitSeqs(carolRoomB, room.id, N, 5000, `carol chatroom on B (${atKill} at the kill)`);
  await waitSeqs(carolSideB, room.id, N, 5000, 'carol sidebar on B');
  await waitBadge(carolSideB, room.id, { unread_count: N, last_seq: N }, 3000, 'carol on B');
  // The dead instance's clients resume on the survivor.
  const last = seqsOf(bobRoomA, room.id).at(-1) ?? 0;
  assert.deepEqual(seqsOf(bobRoomA, room.id), range(1, last), 'bob chatroom on A until the kill');
  const bobRoomB = await chatroom(B, bob, room.id, last);
  await waitSeqs(union(bobRoomA, bobRoomB), room.id, N, 5000, `bob chatroom: A up to ${last}, then B`);
  const bobSideB = await sidebar(B, bob);
  const snap = await snapshotOf(bobSideB, room.id);
  assert.deepEqual([snap.data.unread_count, snap.data.last_seq], [N, N], "bob's sidebar snapshot on B");
  // And live on the survivor.
  await send(carol.b, room.id, 'after the crash');
  await seqOf(bobRoomB, room.id, N + 1);
  await seqOf(bobSideB, room.id, N + 1);
  console.log(`# SIGKILL after ${killedAfter} answered sends: ${N} stored, ${acked.size} answered 201, ${failedOnA} sends to A failed, ${shed} sends shed (whole file); ` +
    `bob had ${last} on A, carol ${atKill} at the kill`);

  // The killed instance restarted on the same database and bus rejoins.
  A = await startServer({ dir, args });
  await waitReady(A, 200, 5000);
  const bobSideA2 = await sidebar(A, bob);
  await snapshotOf(bobSideA2, room.id);
  await send(carol.b, room.id, 'to the restarted instance');
  const m = await seqOf(bobSideA2, room.id, N + 2);
  assert.equal(m.data.content, 'to the restarted instance');
});
