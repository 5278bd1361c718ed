// Several instances on one Redis bus (CONTRACT.md "More than one instance", `--bus redis://`):
// a real redis-server of its own on a free port and two `parley serve` sharing one SQLite file
// (WAL; see docs/decisions.md for why that is safe on one machine) and one key file. Events
// committed on A reach sockets on B in seq order with exact badges; a logout on A closes the
// user's sockets on B; losing Redis makes /readyz 503 on both (REST and local sockets go on),
// and once it is back every client — resuming or still connected — has every message and the
// exact unread counts.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/redis_bus.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer, client, newUser } from './lib/server.mjs';
import { NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, assertStatus, freePort } from './lib/rest-helpers.mjs';
import { open } from './lib/ws-client.mjs';
import { REDIS, startRedis, waitReady, seqsOf, range, waitSeqs, badge, waitBadge, unreadOf } from './lib/cluster.mjs';

let dir, redisPort, redis, A, B, busArgs;
const clients = [];
const track = (c) => { clients.push(c); return c; };

before(async () => {
  if (!REDIS) return;
  dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  writeFileSync(join(dir, 'jwt.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  const args = [...NO_COOLDOWN, '--jwt-secret-file', join(dir, 'jwt.key'), '--bus', `redis://127.0.0.1:${redisPort}`];
  busArgs = args;
  // One SQLite file for both (startServer's dir option: its parley.db), started together on
  // the empty file: one migrates, the other waits for it.
  [A, B] = await Promise.all([startServer({ dir, args }), startServer({ dir, args })]);
  await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all([A, B].filter(Boolean).map((s) => s.stop()));
  if (redis) await redis.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// A user registered on one instance, with a REST client on each.
async function user(prefix) {
  const u = await newUser(A, prefix);
  u.a = client(A.url, u.token);
  u.b = client(B.url, u.token);
  return u;
}
async function group(owner, members, name) {
  const r = await owner.a.post('/api/chatrooms', { name, member_ids: members.map((m) => m.user.id) });
  assertStatus(r, 201, 'create room');
  return r.body;
}
async function send(api, roomId, content) {
  const r = await api.post(`/api/chatrooms/${roomId}/messages`, { content });
  assertStatus(r, 201, `send in ${roomId}`);
  return r.body;
}
const sidebar = async (srv, u) => track(await open(srv.url, `/ws?token=${u.token}`));
const chatroom = async (srv, u, roomId, afterSeq) => track(await open(srv.url,
  `/api/ws?token=${u.token}&room_id=${roomId}${afterSeq === undefined ? '' : `&after_seq=${afterSeq}`}`));

test('a message sent via A reaches sidebar and chatroom sockets on B in seq order, with exact badges', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const alice = await user('ra');
  const bob = await user('rb');
  const carol = await user('rc');
  const room = await group(alice, [bob, carol], 'across');
  // Bob on B (both kinds of socket), Carol's sidebar on B, Alice's sidebar on A. No wait for
  // the bus: a subscription that comes after the sockets' first reads is caught up from storage.
  const bobSide = await sidebar(B, bob);
  const bobRoom = await chatroom(B, bob, room.id);
  const carolSide = await sidebar(B, carol);
  const aliceSide = await sidebar(A, alice);
  // A sidebar's position is its snapshot (CONTRACT.md "Resume"): each has read the room's
  // badge (last_seq 0) before the first send, so each must get all 30.
  for (const c of [bobSide, carolSide, aliceSide]) {
    const snap = await c.next((e) => e.type === 'unread_count_update' && e.data.room_id === room.id, 3000);
    assert.equal(snap.data.last_seq, 0, 'snapshot before the sends');
  }

  // 30 sends on A, five at a time (parallel commits publish in any order).
  for (let i = 0; i < 30; i += 5)
    await Promise.all(range(i + 1, i + 5).map((k) => send(alice.a, room.id, `m${k}`)));
  await waitSeqs(bobRoom, room.id, 30, 5000, 'bob chatroom on B');
  await waitSeqs(bobSide, room.id, 30, 5000, 'bob sidebar on B');
  await waitSeqs(carolSide, room.id, 30, 5000, 'carol sidebar on B');
  // Parallel sends take their seqs in commit order: each frame is the stored message of its seq.
  const stored = (await alice.a.get(`/api/chatrooms/${room.id}/messages?after_seq=0&limit=50`)).body.messages;
  assert.deepEqual(bobRoom.all.filter((e) => e.type === 'new_message').map((e) => [e.data.seq, e.data.id, e.data.content]),
    stored.map((m) => [m.seq, m.id, m.content]), 'the frames are the stored messages');
  await waitBadge(bobSide, room.id, { unread_count: 30, last_seq: 30 }, 3000, 'bob on B');
  await waitBadge(carolSide, room.id, { unread_count: 30, last_seq: 30 }, 3000, 'carol on B');
  assert.equal(badge(bobSide, room.id).total_unread, 30);
  assert.equal(seqsOf(aliceSide, room.id).length, 30, 'alice (sender) gets echoes on A');

  // Bob reads 10 on B: his badge on B, blue ticks to Alice on A.
  const m10 = (await alice.a.get(`/api/chatrooms/${room.id}/messages?after_seq=9&limit=1`)).body.messages[0];
  assertStatus(await bob.b.post(`/api/messages/${m10.id}/read`), 200, 'bob reads 10 on B');
  await waitBadge(bobSide, room.id, { unread_count: 20, last_seq: 30 }, 3000, 'bob after his read');
  const read = await aliceSide.next((e) => e.type === 'message_read' && e.data.reader_id === bob.user.id, 3000);
  assert.equal(read.data.up_to_seq, 10, 'message_read on A from a read on B');
  assert.equal(await unreadOf(bob.a, room.id), 20, 'REST on A agrees');
  assert.equal(badge(carolSide, room.id).unread_count, 30, "bob's read does not touch carol's badge");
});

// How many connections Redis has subscribed to `channel` (PUBSUB NUMSUB over RESP).
function numsub(channel) {
  return new Promise((resolve, reject) => {
    const s = net.connect(redisPort, '127.0.0.1', () => {
      const args = ['PUBSUB', 'NUMSUB', channel];
      s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const m = buf.match(/^\*2\r\n\$\d+\r\n[^\r]*\r\n:(\d+)\r\n/);
      if (m) { s.end(); resolve(Number(m[1])); }
    });
    s.on('error', reject);
  });
}
async function waitSubscribers(channel, n) {
  while (await numsub(channel) < n) await sleep(20);
}

test('delivered on B reaches the sender on A (message_delivered across instances), and read-by-who on A lists it', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const alice = await user('dva');
  const bob = await user('dvb');
  const room = await group(alice, [bob], 'ticks across');
  const aliceSide = await sidebar(A, alice);
  const bobSide = await sidebar(B, bob);
  // Watermark events are not caught up from storage: both instances must follow the room first.
  await waitSubscribers(`parley:r:${room.id}`, 2);
  const m = await send(alice.a, room.id, 'hello');
  const got = await bobSide.next((e) => e.type === 'new_message' && e.data.id === m.id, 5000);
  bobSide.send({ type: 'delivered', data: { room_id: room.id, up_to_seq: got.data.seq } });
  const isMine = (e) => e.type === 'message_delivered' && e.data.room_id === room.id;
  const onA = await aliceSide.next(isMine, 5000);
  const onB = await bobSide.next(isMine, 5000);
  assert.deepEqual(onA.data, onB.data, 'the same event on both instances');
  assert.equal(onA.data.user_id, bob.user.id);
  assert.equal(onA.data.up_to_seq, 1);
  const w = await alice.a.get(`/api/messages/${m.id}/read-by-who`);
  assertStatus(w, 200, 'read-by-who on A');
  assert.deepEqual(w.body.delivered_to, [{ user_id: bob.user.id, username: bob.user.username, delivered_at: onA.data.delivered_at }]);
});

test('logout on A closes the user\'s sockets on B with 1008 token revoked within 2 s', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const dan = await user('rd');
  const room = await group(dan, [], 'solo');
  const side = await sidebar(B, dan);
  const chat = await chatroom(B, dan, room.id);
  // Make B remember dan's token version (its cache), so that only the event can revoke it.
  assertStatus(await dan.b.get('/api/me'), 200, 'B knows the token');
  const t0 = Date.now();
  assert.equal((await dan.a.post('/api/auth/logout')).status, 204, 'logout on A');
  for (const [name, c] of [['sidebar', side], ['chatroom', chat]]) {
    const info = await Promise.race([c.closed, sleep(3000).then(() => null)]);
    assert.ok(info, `${name} on B closed`);
    assert.equal(info.code, 1008, `${name} close code`);
    assert.equal(info.reason, 'token revoked', `${name} close reason`);
    assert.ok(Date.now() - t0 < 2000, `${name} closed within 2 s (${Date.now() - t0} ms)`);
  }
  console.log(`# logout on A: sockets on B closed 1008 within ${Date.now() - t0} ms`);
  assert.equal((await dan.b.get('/api/me')).status, 401, 'the old token is refused on B');
});

// Typing is never stored: the only way across is the bus (the room's channel).
test('typing across instances: a typer on A is heard by the members on B (not by the typer\'s socket on B); when the typer\'s instance dies, B ends it after 6 s', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const erin = await user('re');
  const finn = await user('rf');
  const room = await group(erin, [finn], 'typing');
  const isTyping = (e) => e.type === 'typing';
  const erinSide = await sidebar(A, erin);
  const erinOnB = await sidebar(B, erin);
  const finnSide = await sidebar(B, finn);
  const finnRoom = await chatroom(B, finn, room.id);
  // B subscribes to the room's channel a moment after finn's sockets read their position; a
  // start published before that is not heard there (typing is ephemeral): refreshed, as a
  // client does while its user types, until one is.
  const typing = (c, state) => c.send({ type: 'typing', data: { room_id: room.id, state } });
  const t0 = Date.now();
  let heard = null;
  while (!heard && Date.now() - t0 < 8000) {
    typing(erinSide, 'start');
    heard = await finnSide.next(isTyping, 1200).catch(() => null);
  }
  assert.ok(heard, 'a start on A reached the sidebar on B');
  assert.deepEqual(heard.data, { room_id: room.id, user_id: erin.user.id, state: 'start' });
  assert.deepEqual((await finnRoom.next(isTyping, 8000)).data.state, 'start', 'and the chatroom socket on B');
  typing(erinSide, 'stop');
  for (const c of [finnSide, finnRoom]) {
    const stop = await c.next((e) => isTyping(e) && e.data.state === 'stop', 8000);
    assert.deepEqual(stop.data, { room_id: room.id, user_id: erin.user.id, state: 'stop' });
  }
  // The other way, from a chatroom socket on B to erin's sidebar on A: refreshed as above,
  // since A too follows the room's channel a moment after erin's sidebar read its position.
  let back = null;
  const t2 = Date.now();
  while (!back && Date.now() - t2 < 8000) {
    typing(finnRoom, 'start');
    back = await erinSide.next(isTyping, 1200).catch(() => null);
  }
  assert.ok(back, 'a start on B reached the sidebar on A');
  assert.deepEqual(back.data, { room_id: room.id, user_id: finn.user.id, state: 'start' });
  typing(finnRoom, 'stop');
  await erinSide.next((e) => isTyping(e) && e.data.state === 'stop', 8000);
  await sleep(300);
  assert.deepEqual(erinOnB.all.filter((e) => isTyping(e) && e.data.user_id === erin.user.id), [],
    'the typer\'s own socket on the other instance heard none of it');

  // A third instance types and dies (SIGKILL: no stop is ever published): B ends it itself.
  const C = await startServer({ dir, args: busArgs });
  try {
    const erinOnC = await open(C.url, `/ws?token=${erin.token}`);
    finnSide.drain(isTyping);
    heard = null;
    const t1 = Date.now();
    while (!heard && Date.now() - t1 < 8000) {
      typing(erinOnC, 'start');
      heard = await finnSide.next(isTyping, 1200).catch(() => null);
    }
    assert.ok(heard && heard.data.state === 'start', 'a start on C reached B');
    const killedAt = Date.now();
    C.proc.kill('SIGKILL');
    await C.exited;
    const stop = await finnSide.next(isTyping, 12000);
    assert.deepEqual(stop.data, { room_id: room.id, user_id: erin.user.id, state: 'stop' }, 'B ended it');
    console.log(`# typing of a dead instance ended on B ${Date.now() - killedAt} ms after the kill`);
  } finally {
    await C.stop('SIGKILL');
  }
});

test('Redis lost during traffic: /readyz 503 on both, REST and local sockets go on; back: every client has every message and exact badges', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const erin = await user('re');
  const frank = await user('rf');
  const gus = await user('rg');
  const room = await group(erin, [frank, gus], 'outage');
  const frankSideB = await sidebar(B, frank);   // stays connected through the outage (on B)
  const frankRoomB = await chatroom(B, frank, room.id);
  const gusRoomA = await chatroom(A, gus, room.id); // local to the sender's instance
  const gusSideB = await sidebar(B, gus);          // will disconnect and resume
  const gusRoomB = await chatroom(B, gus, room.id);

  // Traffic on A while Redis goes away.
  let sent = 0;
  let sending = true;
  const sender = (async () => {
    while (sending) { await send(erin.a, room.id, `t${++sent}`); await sleep(15); }
  })();
  await sleep(300);
  await redis.stop();
  const lostAt = Date.now();
  const [ra, rb] = await Promise.all([waitReady(A, 503, 5000), waitReady(B, 503, 5000)]);
  console.log(`# /readyz 503 after ${ra.ms} ms (A), ${rb.ms} ms (B): ${JSON.stringify(rb.body)}`);
  assert.match(rb.body.reason, /bus/, '/readyz names the bus');
  assert.ok(Date.now() - lostAt < 5000, '503 on both within 5 s');
  await sleep(500);

  // REST works on both instances while the bus is away; B reads what A committed.
  await Promise.all([gusSideB.close(), gusRoomB.close()]);
  const gusSeen = seqsOf(gusRoomB, room.id).length;
  assert.deepEqual(seqsOf(gusRoomB, room.id), range(1, gusSeen), 'gus on B before it left: in order');
  assertStatus(await frank.b.get(`/api/chatrooms/${room.id}/messages?limit=1`), 200, 'history on B');
  await send(frank.b, room.id, 'from B during the outage'); ++sent;
  // A local socket still gets what its instance commits.
  const beforeLocal = seqsOf(gusRoomA, room.id).length;
  await sleep(300);
  assert.ok(seqsOf(gusRoomA, room.id).length > beforeLocal, 'A delivers locally while Redis is away');
  // Frank reads on B during the outage: his badges must end exact even though the events are lost.
  const latest = (await frank.b.get(`/api/chatrooms/${room.id}/messages?limit=1`)).body.messages[0];
  assertStatus(await frank.b.post(`/api/messages/${latest.id}/read`), 200, 'frank reads on B');
  await sleep(300);
  sending = false;
  await sender;
  // Two more messages on A and a read of Gus's on A while still down.
  await send(erin.a, room.id, 'last 1'); ++sent;
  await send(erin.a, room.id, 'last 2'); ++sent;
  const total = sent;

  redis = await startRedis(redisPort);
  const backAt = Date.now();
  const [ba, bb] = await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
  console.log(`# /readyz 200 after ${ba.ms} ms (A), ${bb.ms} ms (B) of redis-server's return`);
  assert.ok(Date.now() - backAt < 5000, '200 on both within 5 s');

  // Every message in storage, gap-free.
  const hist = await erin.a.get(`/api/chatrooms/${room.id}/messages?after_seq=0&limit=200`);
  assert.deepEqual(hist.body.messages.map((m) => m.seq), range(1, total), 'storage has every message');

  // Still connected on B: caught up from storage after the return, in order, no duplicate.
  const t0 = Date.now();
  await waitSeqs(frankRoomB, room.id, total, 5000, 'frank chatroom on B (stayed connected)');
  await waitSeqs(frankSideB, room.id, total, 5000, 'frank sidebar on B (stayed connected)');
  const frankUnread = await unreadOf(frank.b, room.id);
  assert.equal(frankUnread, total - latest.seq, "frank's unread per REST");
  await waitBadge(frankSideB, room.id, { unread_count: frankUnread, last_seq: total }, 5000, 'frank badge on B');
  console.log(`# sockets that stayed connected caught up ${Date.now() - t0} ms after /readyz 200`);

  // Resuming on B: the chatroom from where it was, the sidebar from its snapshot.
  const gusRoom2 = await chatroom(B, gus, room.id, gusSeen);
  await waitSeqs({ get all() { return [...gusRoomB.all, ...gusRoom2.all]; } }, room.id, total, 5000, 'gus chatroom resumed on B');
  const gusSide2 = await sidebar(B, gus);
  await waitBadge(gusSide2, room.id, { unread_count: total, last_seq: total }, 3000, 'gus sidebar snapshot on B');
  assert.equal(await unreadOf(gus.a, room.id), total, "gus's unread per REST");
  // And the live path works again across instances.
  await send(erin.a, room.id, 'after');
  const after1 = await gusRoom2.next((e) => e.type === 'new_message' && e.data.seq === total + 1, 3000);
  assert.equal(after1.data.content, 'after');
  await waitBadge(gusSide2, room.id, { unread_count: total + 1, last_seq: total + 1 }, 3000, 'gus live badge after the return');
  // /metrics tells the story: up again, reconnected, events published by A and received by B.
  const metric = async (srv, series) => {
    const text = (await client(srv.url).get('/metrics')).body;
    const line = text.split('\n').find((l) => l.startsWith(series + ' '));
    assert.ok(line, `${series} in /metrics`);
    return Number(line.split(' ')[1]);
  };
  assert.equal(await metric(B, 'parley_bus_up'), 1);
  assert.ok(await metric(B, 'parley_bus_connects_total') >= 2, 'B subscribed again after the outage');
  assert.ok(await metric(A, 'parley_bus_events_total{outcome="published"}') > total / 2, 'A published to Redis');
  assert.ok(await metric(B, 'parley_bus_events_total{outcome="received"}') > 0, 'B received from Redis');
});

test('a revocation while Redis is away: B refuses the old token at once and closes its sockets once the bus is back', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const hal = await user('rh');
  const room = await group(hal, [], 'solo2');
  const side = await sidebar(B, hal);
  const chat = await chatroom(B, hal, room.id);
  assertStatus(await hal.b.get('/api/me'), 200, 'B knows the token');
  await redis.stop();
  await waitReady(B, 503, 5000);
  assert.equal((await hal.a.post('/api/auth/logout')).status, 204, 'logout on A while Redis is away');
  assert.equal((await hal.b.get('/api/me')).status, 401, 'B checks tokens in storage while the bus is away');
  redis = await startRedis(redisPort);
  await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
  const t0 = Date.now();
  for (const [name, c] of [['sidebar', side], ['chatroom', chat]]) {
    const info = await Promise.race([c.closed, sleep(3000).then(() => null)]);
    assert.ok(info, `${name} on B closed after the return`);
    assert.equal(info.code, 1008);
    assert.equal(info.reason, 'token revoked');
  }
  console.log(`# revoked sockets closed ${Date.now() - t0} ms after /readyz 200`);
});

test('a frozen Redis (no answer, connection open) is noticed: /readyz 503 within 5 s, 200 again once it answers', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
  redis.freeze();
  try {
    const t0 = Date.now();
    const [ra, rb] = await Promise.all([waitReady(A, 503, 5000), waitReady(B, 503, 5000)]);
    console.log(`# frozen Redis: /readyz 503 after ${ra.ms} ms (A), ${rb.ms} ms (B): ${JSON.stringify(ra.body)} ${JSON.stringify(rb.body)}`);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    redis.thaw();
  }
  const [ba, bb] = await Promise.all([waitReady(A, 200, 5000), waitReady(B, 200, 5000)]);
  console.log(`# thawed Redis: /readyz 200 after ${ba.ms} ms (A), ${bb.ms} ms (B)`);
  // And events flow again.
  const ivy = await user('ri');
  const jay = await user('rj');
  const room = await group(ivy, [jay], 'thawed');
  const jaySide = await sidebar(B, jay);
  await send(ivy.a, room.id, 'hello again');
  await waitSeqs(jaySide, room.id, 1, 3000, 'jay on B after the thaw');
});

test('--bus: a malformed URL stops start-up (exit 2); an unreachable Redis starts unready and serves REST', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  for (const bad of ['redis://127.0.0.1:notaport', 'redis://user@127.0.0.1:6379', 'redis://:6379']) {
    const r = spawnSync(process.env.PARLEY_BIN, ['serve', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--bus', bad],
      { timeout: 10000 });
    assert.equal(r.status, 2, `${bad}: exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr.toString(), /--bus/, `${bad}: says what is wrong`);
  }
  const port = await freePort(); // nothing listens there
  const s = await startServer({ args: ['--bus', `redis://127.0.0.1:${port}`] });
  try {
    // 503 from the start ("not connected to Redis yet"), then with the connect error.
    let r = await waitReady(s, 503, 2000);
    const t0 = Date.now();
    while (!/Connection refused/.test(r.body.reason) && Date.now() - t0 < 2000) {
      await sleep(50);
      r = await client(s.url).get('/readyz');
      assert.equal(r.status, 503, 'never ready without Redis');
    }
    assert.match(r.body.reason, /Connection refused/, `reason: ${r.body.reason}`);
    const u = await newUser(s, 'rk');
    assertStatus(await u.api.get('/api/me'), 200, 'REST without the bus');
  } finally {
    await s.close();
  }
});

test('SIGTERM with the Redis bus: both instances exit 0 within 10 s', { skip: !REDIS && 'redis-server is not installed' }, async () => {
  const u = await user('rl');
  const side = await sidebar(B, u);
  const t0 = Date.now();
  const [ea, eb] = await Promise.all([A.stop('SIGTERM'), B.stop('SIGTERM')]);
  assert.deepEqual([ea.code, eb.code], [0, 0], 'exit codes');
  assert.ok(Date.now() - t0 < 10000, `exited in ${Date.now() - t0} ms`);
  assert.equal((await side.closed).code, 1001);
});
