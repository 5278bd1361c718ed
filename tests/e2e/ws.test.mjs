// WebSocket end-to-end tests: the "WebSocket" section of ../../../shared/CONTRACT.md against a
// real `parley serve` (admission before the upgrade, events and their exact fields,
// membership, ordering, resume, back-pressure, keep-alive, shutdown, inbound rate).
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/ws.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { TIME_RE, ID_RE, sleep, assertStatus, retryShed, createGroupOk as group, sendOk } from './lib/rest-helpers.mjs';
import { open, connect, probeUpgrade, rawConnect, where } from './lib/ws-client.mjs';

const UNKNOWN_ID = '987654321987654321';
const { server, track } = useSuite();
let S; // main server: no cooldown
before(async () => { S = await server(NO_COOLDOWN); });

// ---- helpers ----
const send = sendOk;
const sidebar = async (srv, u, opts) => track(await open(srv.url, `/ws?token=${u.token}`, opts));
const chatroom = async (srv, u, roomId, afterSeq, opts) => track(await open(srv.url,
  `/api/ws?token=${u.token}&room_id=${roomId}${afterSeq === undefined ? '' : `&after_seq=${afterSeq}`}`, opts));
const keys = (o) => Object.keys(o).sort();
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

function assertRefused(res, status, code, what) {
  assert.equal(res.status, status, `${what}: status ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error, `${what}: error body ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, code, `${what}: error.code`);
  assert.equal(typeof res.body.error.message, 'string', `${what}: error.message`);
}
const assertAccepted = (res, what) => assert.equal(res.status, 101, `${what}: status ${res.status} ${JSON.stringify(res.body)}`);

function assertConnected(ev, userId, roomId) {
  assert.equal(ev.type, 'connected', `first frame: ${JSON.stringify(ev)}`);
  const d = ev.data;
  const expectKeys = roomId ? ['connection_id', 'room_id', 'server_time', 'user_id'] : ['connection_id', 'server_time', 'user_id'];
  assert.deepEqual(keys(d), expectKeys, 'connected fields');
  assert.equal(d.user_id, userId);
  if (roomId) assert.equal(d.room_id, roomId);
  assert.equal(typeof d.connection_id, 'string');
  assert.ok(d.connection_id.length > 0);
  assert.match(d.server_time, TIME_RE);
}
function assertUnread(ev, expected, what = 'unread_count_update') {
  assert.equal(ev.type, 'unread_count_update', what);
  assert.deepEqual(keys(ev.data), ['last_seq', 'room_id', 'total_unread', 'unread_count'], `${what} fields`);
  assert.deepEqual(ev.data, expected, what);
}
function assertRead(ev, expected, what = 'message_read') {
  assert.equal(ev.type, 'message_read', what);
  const d = ev.data;
  assert.deepEqual(keys(d), ['message_id', 'read_at', 'read_status', 'reader_id', 'room_id', 'up_to_seq'], `${what} fields`);
  assert.match(d.read_at, TIME_RE, `${what} read_at`);
  assert.ok(Array.isArray(d.read_status));
  for (const s of d.read_status) {
    assert.deepEqual(keys(s), ['read_at', 'user_id'], `${what} read_status entry`);
    assert.match(s.read_at, TIME_RE);
  }
  const { read_status: rs, read_at: _ra, ...rest } = d;
  const { read_status: ers, ...erest } = expected;
  assert.deepEqual(rest, erest, what);
  assert.deepEqual(rs.map((s) => s.user_id).sort(), [...ers].sort(), `${what} read_status users`);
  // The reader's own entry is the moment of this move.
  const mine = rs.find((s) => s.user_id === d.reader_id);
  assert.ok(mine, `${what}: the reader is in read_status`);
  assert.equal(mine.read_at, d.read_at, `${what}: reader's read_at`);
}
async function metric(srv, name) {
  const r = await fetch(`${srv.url}/metrics`);
  const text = await r.text();
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m && m[1] === name) { total += Number(m[3]); found = true; }
  }
  return found ? total : null;
}

// =====================================================================================
// 1. Admission: every refusal before the upgrade, as plain HTTP
// =====================================================================================

test('sidebar /ws: token required; bad token, user_id without the flag, disagreeing ids → 401', async () => {
  const a = await newUser(S, 'wsa');
  const b = await newUser(S, 'wsb');
  assertRefused(await probeUpgrade(S.url, '/ws'), 401, 'unauthorized', 'no token');
  assertRefused(await probeUpgrade(S.url, '/ws?token='), 401, 'unauthorized', 'empty token');
  assertRefused(await probeUpgrade(S.url, '/ws?token=not.a.jwt'), 401, 'unauthorized', 'bad token');
  assertRefused(await probeUpgrade(S.url, `/ws?token=${a.token}x`), 401, 'unauthorized', 'tampered token');
  assertRefused(await probeUpgrade(S.url, `/ws?user_id=${a.user.id}`), 401, 'unauthorized', 'user_id without the flag');
  assertRefused(await probeUpgrade(S.url, `/ws?token=${a.token}&user_id=${b.user.id}`), 401, 'unauthorized', 'token/user_id disagree');
  assertAccepted(await probeUpgrade(S.url, `/ws?token=${a.token}&user_id=${a.user.id}`), 'token and agreeing user_id');
  assertAccepted(await probeUpgrade(S.url, `/ws?token=${a.token}`), 'token');
  // Bearer header instead of token=
  assertAccepted(await probeUpgrade(S.url, '/ws', { Authorization: `Bearer ${a.token}` }), 'Bearer header');
  assertRefused(await probeUpgrade(S.url, '/ws', { Authorization: 'Bearer nope' }), 401, 'unauthorized', 'bad Bearer header');
  // The same through a real client.
  const c = await sidebar(S, a, { headers: { Authorization: `Bearer ${a.token}` } }).catch((e) => e);
  assert.ok(!(c instanceof Error), `Bearer header via ws: ${c.message}`);
  assertConnected(c.connected, a.user.id);
  await c.close();
  await assert.rejects(connect(S.url, '/ws?token=bad'), (e) => e.status === 401);
});

test('sidebar /ws?user_id= with --allow-insecure-sidebar: existing id accepted, unknown/malformed 401, disagreement 401', async () => {
  const I = await server(['--allow-insecure-sidebar', ...NO_COOLDOWN]);
  const a = await newUser(I, 'ins');
  const b = await newUser(I, 'ins');
  const c = track(await open(I.url, `/ws?user_id=${a.user.id}`));
  assertConnected(c.connected, a.user.id);
  await c.close();
  assertRefused(await probeUpgrade(I.url, `/ws?user_id=${UNKNOWN_ID}`), 401, 'unauthorized', 'unknown user_id');
  for (const bad of ['abc', '01', '-1', '', '1234567890123456789', '1.5']) {
    assertRefused(await probeUpgrade(I.url, `/ws?user_id=${encodeURIComponent(bad)}`), 401, 'unauthorized', `malformed user_id ${bad}`);
  }
  assertRefused(await probeUpgrade(I.url, `/ws?token=${a.token}&user_id=${b.user.id}`), 401, 'unauthorized', 'token/user_id disagree');
  assertRefused(await probeUpgrade(I.url, `/ws?token=garbage&user_id=${a.user.id}`), 401, 'unauthorized', 'bad token with a valid user_id');
  assertAccepted(await probeUpgrade(I.url, `/ws?token=${a.token}&user_id=${a.user.id}`), 'agreeing');
  // The flag opens only the sidebar: the chatroom endpoint still needs a token.
  const room = await group(a, [b]);
  assertRefused(await probeUpgrade(I.url, `/api/ws?user_id=${a.user.id}&room_id=${room.id}`), 401, 'unauthorized', 'chatroom by user_id');
});

test('chatroom /api/ws: 401 token, 403 non-member, 404 unknown room, 400 malformed room_id', async () => {
  const a = await newUser(S, 'cra');
  const b = await newUser(S, 'crb');
  const outsider = await newUser(S, 'cro');
  const room = await group(a, [b]);
  assertRefused(await probeUpgrade(S.url, `/api/ws?room_id=${room.id}`), 401, 'unauthorized', 'missing token');
  assertRefused(await probeUpgrade(S.url, `/api/ws?token=bad&room_id=${room.id}`), 401, 'unauthorized', 'bad token');
  assertRefused(await probeUpgrade(S.url, `/api/ws?token=${outsider.token}&room_id=${room.id}`), 403, 'forbidden', 'non-member');
  assertRefused(await probeUpgrade(S.url, `/api/ws?token=${a.token}&room_id=${UNKNOWN_ID}`), 404, 'not_found', 'unknown room');
  for (const bad of ['abc', '01', '-5', '1234567890123456789']) {
    assertRefused(await probeUpgrade(S.url, `/api/ws?token=${a.token}&room_id=${bad}`), 400, 'invalid_request', `malformed room_id ${bad}`);
  }
  assertAccepted(await probeUpgrade(S.url, `/api/ws?token=${b.token}&room_id=${room.id}`), 'member');
  assertAccepted(await probeUpgrade(S.url, `/api/ws?room_id=${room.id}`, { Authorization: `Bearer ${a.token}` }), 'member via Bearer header');
  const c = await chatroom(S, b, room.id);
  assertConnected(c.connected, b.user.id, room.id);
  await assert.rejects(connect(S.url, `/api/ws?token=${outsider.token}&room_id=${room.id}`), (e) => e.status === 403);
});

test('Origin: foreign → 403, own origin and no Origin accepted; with --allowed-origin only the listed ones', async () => {
  const a = await newUser(S, 'ora');
  const host = new URL(S.url).host;
  assertRefused(await probeUpgrade(S.url, `/ws?token=${a.token}`, { Origin: 'http://evil.example' }), 403, 'forbidden', 'foreign origin');
  assertRefused(await probeUpgrade(S.url, `/ws?token=${a.token}`, { Origin: `https://${host}` }), 403, 'forbidden', 'own host, other scheme');
  assertAccepted(await probeUpgrade(S.url, `/ws?token=${a.token}`, { Origin: `http://${host}` }), 'own origin');
  assertAccepted(await probeUpgrade(S.url, `/ws?token=${a.token}`), 'no Origin');
  // Also the real client (ws sends Origin only when asked).
  const ok = await sidebar(S, a, { origin: `http://${host}` });
  assertConnected(ok.connected, a.user.id);
  await assert.rejects(connect(S.url, `/ws?token=${a.token}`, { origin: 'http://evil.example' }), (e) => e.status === 403);

  const O = await server(['--allowed-origin', 'https://app.example', '--allowed-origin', 'http://other.example:8443', ...NO_COOLDOWN]);
  const b = await newUser(O, 'orb');
  const ohost = new URL(O.url).host;
  assertAccepted(await probeUpgrade(O.url, `/ws?token=${b.token}`, { Origin: 'https://app.example' }), 'listed origin 1');
  assertAccepted(await probeUpgrade(O.url, `/ws?token=${b.token}`, { Origin: 'http://other.example:8443' }), 'listed origin 2');
  assertAccepted(await probeUpgrade(O.url, `/ws?token=${b.token}`), 'no Origin with an allowlist');
  assertRefused(await probeUpgrade(O.url, `/ws?token=${b.token}`, { Origin: `http://${ohost}` }), 403, 'forbidden', 'own origin not listed');
  assertRefused(await probeUpgrade(O.url, `/ws?token=${b.token}`, { Origin: 'https://app.example.evil' }), 403, 'forbidden', 'suffixed origin');
  assertRefused(await probeUpgrade(O.url, `/ws?token=${b.token}`, { Origin: 'http://app.example' }), 403, 'forbidden', 'other scheme');
  const room = await group(b, []);
  assertRefused(await probeUpgrade(O.url, `/api/ws?token=${b.token}&room_id=${room.id}`, { Origin: 'http://evil.example' }), 403, 'forbidden', 'chatroom, foreign origin');
  assertAccepted(await probeUpgrade(O.url, `/api/ws?token=${b.token}&room_id=${room.id}`, { Origin: 'https://app.example' }), 'chatroom, listed origin');
});

test('cooldown: same user+endpoint+room within 500 ms → 429 with Retry-After; sidebar+chatroom together accepted; later accepted again', async () => {
  const C = await server([]); // default cooldown 500 ms
  const a = await newUser(C, 'cda');
  const b = await newUser(C, 'cdb');
  const r1 = await group(a, [b], 'r1');
  const r2 = await group(a, [b], 'r2');
  // A sidebar and two chatroom sockets of different rooms opened together: all accepted.
  const t0 = Date.now();
  const [s, c1, c2] = await Promise.all([
    probeUpgrade(C.url, `/ws?token=${a.token}`),
    probeUpgrade(C.url, `/api/ws?token=${a.token}&room_id=${r1.id}`),
    probeUpgrade(C.url, `/api/ws?token=${a.token}&room_id=${r2.id}`),
  ]);
  assertAccepted(s, 'sidebar together with chatroom');
  assertAccepted(c1, 'chatroom r1 together with sidebar');
  assertAccepted(c2, 'chatroom r2 together with sidebar');
  // Another user is not affected.
  assertAccepted(await probeUpgrade(C.url, `/ws?token=${b.token}`), 'other user');
  const again = await probeUpgrade(C.url, `/ws?token=${a.token}`);
  const againRoom = await probeUpgrade(C.url, `/api/ws?token=${a.token}&room_id=${r1.id}`);
  assert.ok(Date.now() - t0 < 450, 'the retries were made inside the cooldown');
  assertRefused(again, 429, 'rate_limited', 'sidebar again within 500 ms');
  assert.match(String(again.headers['retry-after']), /^\d+$/, 'Retry-After on 429');
  assert.ok(Number(again.headers['retry-after']) >= 1, 'Retry-After >= 1');
  assertRefused(againRoom, 429, 'rate_limited', 'chatroom r1 again within 500 ms');
  assert.ok(againRoom.headers['retry-after'], 'Retry-After on chatroom 429');
  // The same through ws.
  await assert.rejects(connect(C.url, `/ws?token=${a.token}`), (e) => e.status === 429 && !!e.headers['retry-after']);
  await sleep(Math.max(0, t0 + 650 - Date.now()));
  assertAccepted(await probeUpgrade(C.url, `/ws?token=${a.token}`), 'sidebar after the cooldown');
  assertAccepted(await probeUpgrade(C.url, `/api/ws?token=${a.token}&room_id=${r1.id}`), 'chatroom after the cooldown');
});

// =====================================================================================
// 2. Events and their exact fields
// =====================================================================================

test('connected first; sidebar snapshot: one unread_count_update per room with exact counts', async () => {
  const a = await newUser(S, 'sna');
  const b = await newUser(S, 'snb');
  const r1 = await group(a, [b], 's1');
  const r2 = await group(a, [b], 's2');
  const r3 = await group(b, [], 's3'); // b alone, no messages
  const m = [];
  for (let i = 0; i < 3; i++) m.push(await send(a, r1.id, `one ${i}`));
  for (let i = 0; i < 2; i++) await send(a, r2.id, `two ${i}`);
  assertStatus(await b.api.post(`/api/messages/${m[0].id}/read`), 200, 'read');
  await send(b, r3.id, 'own message'); // own messages never count
  const c = await sidebar(S, b);
  assertConnected(c.connected, b.user.id);
  await sleep(200);
  // Right after `connected`: exactly one update per room of the user, nothing else first.
  const snap = c.all.slice(1, 4);
  assert.equal(snap.length, 3, `snapshot length: ${JSON.stringify(c.all)}`);
  const byRoom = Object.fromEntries(snap.map((e) => { assert.equal(e.type, 'unread_count_update', JSON.stringify(e)); return [e.data.room_id, e]; }));
  assert.deepEqual(Object.keys(byRoom).sort(), [r1.id, r2.id, r3.id].sort(), 'one per room');
  assertUnread(byRoom[r1.id], { room_id: r1.id, unread_count: 2, total_unread: 4, last_seq: 3 }, 'r1');
  assertUnread(byRoom[r2.id], { room_id: r2.id, unread_count: 2, total_unread: 4, last_seq: 2 }, 'r2');
  assertUnread(byRoom[r3.id], { room_id: r3.id, unread_count: 0, total_unread: 4, last_seq: 1 }, 'r3');
  assert.equal(c.all.length, 4, `nothing more: ${JSON.stringify(c.all.slice(4))}`);
  // A chatroom socket gets `connected` with room_id and no snapshot of other rooms.
  const cr = await chatroom(S, b, r1.id);
  assertConnected(cr.connected, b.user.id, r1.id);
  await cr.expectNone('unread_count_update', 200);
  // connection ids differ per connection.
  assert.notEqual(cr.connected.data.connection_id, c.connected.data.connection_id);
});

test('REST send → new_message to other members (sidebar + chatroom), an echo to the sender\'s connections, nothing to non-members or other rooms; exact unread updates', async () => {
  const a = await newUser(S, 'eva');
  const b = await newUser(S, 'evb');
  const c = await newUser(S, 'evc');
  const d = await newUser(S, 'evd'); // not a member
  const room = await group(a, [b, c], 'main');
  const other = await group(a, [b], 'other');
  const aSide = await sidebar(S, a); const aRoom = await chatroom(S, a, room.id);
  const bSide = await sidebar(S, b); const bRoom = await chatroom(S, b, room.id); const bOther = await chatroom(S, b, other.id);
  const cSide = await sidebar(S, c);
  const dSide = await sidebar(S, d);
  await sleep(150);
  for (const x of [aSide, aRoom, bSide, bRoom, bOther, cSide, dSide]) x.drain();

  const m1 = await send(a, room.id, 'héllo wörld', { client_msg_id: 'cm-1' });
  for (const [who, x] of [['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]]) {
    const ev = await x.next('new_message');
    assert.deepEqual(keys(ev), ['data', 'type'], `${who}: frame shape`);
    assert.deepEqual(ev.data, m1, `${who}: new_message carries the message exactly as REST returned it`);
  }
  assertUnread(await bSide.next('unread_count_update'), { room_id: room.id, unread_count: 1, total_unread: 1, last_seq: 1 }, 'b sidebar');
  assertUnread(await bRoom.next('unread_count_update'), { room_id: room.id, unread_count: 1, total_unread: 1, last_seq: 1 }, 'b chatroom');
  assertUnread(await cSide.next('unread_count_update'), { room_id: room.id, unread_count: 1, total_unread: 1, last_seq: 1 }, 'c sidebar');

  const m2 = await send(a, room.id, 'second');
  assert.deepEqual((await bSide.next('new_message')).data, m2);
  assertUnread(await bSide.next('unread_count_update'), { room_id: room.id, unread_count: 2, total_unread: 2, last_seq: 2 }, 'b after m2');
  assertUnread(await cSide.next('unread_count_update'), { room_id: room.id, unread_count: 2, total_unread: 2, last_seq: 2 }, 'c after m2');
  assert.deepEqual((await cSide.next('new_message')).data, m2);
  assert.deepEqual((await bRoom.next('new_message')).data, m2);
  assertUnread(await bRoom.next('unread_count_update'), { room_id: room.id, unread_count: 2, total_unread: 2, last_seq: 2 }, 'b chatroom after m2');
  // A message in the other room: b's total grows, c (not a member) hears nothing.
  const o1 = await send(a, other.id, 'elsewhere');
  assert.deepEqual((await bOther.next('new_message')).data, o1);
  assert.deepEqual((await bSide.next('new_message')).data, o1);
  assertUnread(await bSide.next('unread_count_update'), { room_id: other.id, unread_count: 1, total_unread: 3, last_seq: 1 }, 'b other room');

  // An idempotent retry (same client_msg_id) returns the original with 200 and broadcasts nothing.
  const retry = await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'héllo wörld', client_msg_id: 'cm-1' });
  assertStatus(retry, 200, 'idempotent retry');
  assert.deepEqual(retry.body, m1);

  // Multi-device: a REST send has no sending connection, so every connection of the sender
  // gets each of its messages once, marked echo:true (the chatroom socket only its room's).
  for (const [who, x, msgs] of [['a sidebar', aSide, [m1, m2, o1]], ['a chatroom', aRoom, [m1, m2]]]) {
    const evs = await x.take('new_message', msgs.length, 5000);
    assert.deepEqual(evs.map((e) => e.data), msgs.map((m) => ({ ...m, echo: true })), `${who}: echoes of its own messages`);
  }

  await sleep(200);
  await bSide.expectNone('new_message', 0);
  await bRoom.expectNone('new_message', 0);
  await aSide.expectNone('new_message', 0);
  await aRoom.expectNone('new_message', 0);
  await aSide.expectNone('unread_count_update', 0); // the sender's count did not change
  await dSide.expectNone(null, 0);
  await bOther.expectNone('new_message', 0); // only the other room's own message (consumed above)
  await cSide.expectNone(null, 0);
  await bSide.expectNone(null, 0);
  await bRoom.expectNone(null, 0); // nothing of the other room
  assert.ok(!bRoom.all.some((e) => e.type === 'new_message' && e.data.room_id !== room.id), 'chatroom socket: only its room');
  assert.ok(!bOther.all.some((e) => e.data?.room_id === room.id), 'other-room chatroom socket gets nothing of room');
});

test('read calls: message_read to all members (sender included) + unread_count_update to the reader; no move → no event', async () => {
  const a = await newUser(S, 'rda');
  const b = await newUser(S, 'rdb');
  const c = await newUser(S, 'rdc');
  const d = await newUser(S, 'rdd');
  const room = await group(a, [b, c], 'reads');
  const other = await group(a, [b], 'reads2');
  const m1 = await send(a, room.id, 'm1');
  const aSide = await sidebar(S, a); const aRoom = await chatroom(S, a, room.id);
  const bSide = await sidebar(S, b); const bOther = await chatroom(S, b, other.id);
  const cSide = await sidebar(S, c); const cRoom = await chatroom(S, c, room.id);
  const dSide = await sidebar(S, d);
  await sleep(150);
  const all = [aSide, aRoom, bSide, bOther, cSide, cRoom, dSide];
  for (const x of all) x.drain();

  // Single read by b.
  assertStatus(await b.api.post(`/api/messages/${m1.id}/read`), 200, 'read m1');
  const exp1 = { room_id: room.id, reader_id: b.user.id, message_id: m1.id, up_to_seq: 1, read_status: [b.user.id] };
  const seen = [];
  for (const [who, x] of [['a sidebar', aSide], ['a chatroom', aRoom], ['b sidebar', bSide], ['c sidebar', cSide], ['c chatroom', cRoom]]) {
    const ev = await x.next('message_read');
    assertRead(ev, exp1, `${who}: single read`);
    seen.push(ev.data);
  }
  for (const s of seen.slice(1)) assert.deepEqual(s, seen[0], 'the same event to everyone');
  assertUnread(await bSide.next('unread_count_update'), { room_id: room.id, unread_count: 0, total_unread: 0, last_seq: 1 }, 'b after read');
  await sleep(150);
  await bOther.expectNone('message_read', 0);
  await dSide.expectNone(null, 0);
  await cSide.expectNone('unread_count_update', 0);
  await aSide.expectNone('unread_count_update', 0);

  // The sender reading its own message moves nothing (a send already moved its watermark).
  assertStatus(await a.api.post(`/api/messages/${m1.id}/read`), 200, 'sender reads own message');
  // Reading it again moves nothing: no event at all.
  assertStatus(await b.api.post(`/api/messages/${m1.id}/read`), 200, 'read m1 again');
  for (const x of all) await x.expectNone('message_read', 0);
  await sleep(300);
  for (const x of all) await x.expectNone('message_read', 0);
  await bSide.expectNone('unread_count_update', 0);

  // mark-all-read by c after two more.
  const m2 = await send(a, room.id, 'm2');
  const m3 = await send(a, room.id, 'm3');
  await sleep(150);
  for (const x of all) x.drain();
  const mar = await c.api.post(`/api/chatrooms/${room.id}/mark-all-read`);
  assertStatus(mar, 200, 'mark-all-read');
  const exp2 = { room_id: room.id, reader_id: c.user.id, message_id: m3.id, up_to_seq: 3, read_status: [c.user.id] };
  for (const [who, x] of [['a sidebar', aSide], ['a chatroom', aRoom], ['b sidebar', bSide], ['c sidebar', cSide], ['c chatroom', cRoom]]) {
    assertRead(await x.next('message_read'), exp2, `${who}: mark-all-read`);
  }
  assertUnread(await cSide.next('unread_count_update'), { room_id: room.id, unread_count: 0, total_unread: 0, last_seq: 3 }, 'c after mark-all-read');
  // Mark-all-read again: nothing moves, nothing sent.
  assertStatus(await c.api.post(`/api/chatrooms/${room.id}/mark-all-read`), 200, 'mark-all-read again');
  await sleep(300);
  for (const x of all) await x.expectNone('message_read', 0);

  // Bulk read by b spanning two rooms: one message_read per room, each to that room's members.
  const o1 = await send(a, other.id, 'o1');
  await sleep(150);
  for (const x of all) x.drain();
  const bulk = await b.api.post('/api/messages/read', { message_ids: [m2.id, m3.id, o1.id] });
  assertStatus(bulk, 200, 'bulk read');
  const exp3 = { room_id: room.id, reader_id: b.user.id, message_id: m3.id, up_to_seq: 3, read_status: [b.user.id, c.user.id] };
  const exp4 = { room_id: other.id, reader_id: b.user.id, message_id: o1.id, up_to_seq: 1, read_status: [b.user.id] };
  for (const [who, x] of [['a chatroom', aRoom], ['c sidebar', cSide], ['c chatroom', cRoom]]) {
    assertRead(await x.next('message_read'), exp3, `${who}: bulk read`);
  }
  assertRead(await bOther.next('message_read'), exp4, 'b other-room chatroom: bulk read');
  const aReads = await aSide.take('message_read', 2);
  const bReads = await bSide.take('message_read', 2);
  for (const [who, evs] of [['a sidebar', aReads], ['b sidebar', bReads]]) {
    const r = Object.fromEntries(evs.map((e) => [e.data.room_id, e]));
    assertRead(r[room.id], exp3, `${who}: bulk read room`);
    assertRead(r[other.id], exp4, `${who}: bulk read other`);
  }
  const bUnread = await bSide.take('unread_count_update', 2);
  const byRoom = Object.fromEntries(bUnread.map((e) => [e.data.room_id, e]));
  assertUnread(byRoom[room.id], { room_id: room.id, unread_count: 0, total_unread: byRoom[room.id].data.total_unread, last_seq: 3 }, 'b bulk room');
  assertUnread(byRoom[other.id], { room_id: other.id, unread_count: 0, total_unread: 0, last_seq: 1 }, 'b bulk other');
  // The last update b sees says 0 in total.
  assert.equal(bUnread[1].data.total_unread, 0, 'b total after bulk');
  await sleep(200);
  await cSide.expectNone('message_read', 0); // only the room event above, not the other room's
  await dSide.expectNone(null, 0);
  assert.ok(!cSide.all.some((e) => e.data?.room_id === other.id), 'c never hears of a room it is not in');
});

test('ping → pong (timestamp echoed exactly), heartbeat → heartbeat_ack; binary, malformed JSON, unknown type → error, connection stays open', async () => {
  const a = await newUser(S, 'pga');
  const c = await sidebar(S, a);
  await sleep(100);
  c.drain();
  for (const ts of [1732443600123, 0.5, -3, 12345678901234567890, 1e-7]) {
    c.send({ type: 'ping', data: { timestamp: ts } });
    const p = await c.next('pong');
    assert.deepEqual(keys(p.data), ['server_time', 'timestamp'], 'pong fields');
    assert.equal(p.data.timestamp, ts, `timestamp ${ts} echoed`);
    assert.match(p.data.server_time, TIME_RE);
  }
  // Echoed exactly: the raw text of the number survives for an integer.
  c.send('{"type":"ping","data":{"timestamp":1732443600999}}');
  await c.next('pong');
  assert.ok(c.raw.at(-1).text.includes('"timestamp":1732443600999'), `raw pong: ${c.raw.at(-1).text}`);

  c.send({ type: 'heartbeat', data: { timestamp: 42 } });
  const h = await c.next('heartbeat_ack');
  assert.deepEqual(keys(h.data), ['server_time', 'timestamp']);
  assert.equal(h.data.timestamp, 42);
  assert.match(h.data.server_time, TIME_RE);
  c.send({ type: 'heartbeat' });
  const h2 = await c.next('heartbeat_ack');
  assert.deepEqual(keys(h2.data), ['server_time', 'timestamp']);
  assert.match(h2.data.server_time, TIME_RE);

  const errorCases = [
    ['binary frame', () => c.ws.send(Buffer.from('{"type":"ping","data":{"timestamp":1}}'), { binary: true })],
    ['malformed JSON', () => c.send('{"type":"ping",')],
    ['not an object', () => c.send('[1,2,3]')],
    ['unknown type', () => c.send({ type: 'launch_rockets', data: {} })],
    ['type missing', () => c.send({ data: {} })],
  ];
  for (const [what, act] of errorCases) {
    act();
    const e = await c.next('error');
    assert.deepEqual(keys(e.data), ['code', 'message'], `${what}: error fields`);
    assert.match(e.data.code, /^[a-z][a-z0-9_]*$/, `${what}: code`);
    assert.equal(typeof e.data.message, 'string');
    assert.ok(e.data.message.length > 0);
    c.send({ type: 'ping', data: { timestamp: 7 } });
    const p = await c.next('pong');
    assert.equal(p.data.timestamp, 7, `${what}: still answering`);
    assert.equal(c.ws.readyState, WebSocket.OPEN, `${what}: still open`);
  }
  assert.equal(c.closeInfo, null);
  assert.ok(c.raw.every((f) => !f.binary), 'every server frame is a text frame');
});

test('a send that clears the sender\'s own unread count → unread_count_update to the sender (and only an echo of the message)', async () => {
  const a = await newUser(S, 'sua');
  const b = await newUser(S, 'sub');
  const room = await group(a, [b], 'own');
  await send(a, room.id, 'one');
  await send(a, room.id, 'two');
  const bSide = await sidebar(S, b);
  await sleep(150);
  assertUnread(bSide.all[1], { room_id: room.id, unread_count: 2, total_unread: 2, last_seq: 2 }, 'b snapshot');
  bSide.drain();
  const m = await send(b, room.id, 'reply'); // moves b's watermark to seq 3: unread 2 → 0
  assertUnread(await bSide.next('unread_count_update'), { room_id: room.id, unread_count: 0, total_unread: 0, last_seq: 3 }, 'sender after its send');
  assert.deepEqual((await bSide.next('new_message')).data, { ...m, echo: true }, 'the sender\'s socket gets the echo');
  await bSide.expectNone('new_message', 200);
  assert.equal(m.seq, 3);
  const rest = await b.api.get('/api/messages/unread-counts');
  assert.deepEqual(rest.body, { unread_counts: { [room.id]: 0 }, total: 0 }, 'REST agrees');
});

test('tokens never appear in logs: the query string is logged with token=REDACTED', async () => {
  const prev = process.env.PARLEY_TEST_LOG_LEVEL;
  process.env.PARLEY_TEST_LOG_LEVEL = 'info'; // the harness passes --log-level from it
  let L;
  try { L = await server(NO_COOLDOWN); } finally {
    if (prev === undefined) delete process.env.PARLEY_TEST_LOG_LEVEL; else process.env.PARLEY_TEST_LOG_LEVEL = prev;
  }
  const a = await newUser(L, 'lga');
  const room = await group(a, [], 'log');
  const c = track(await open(L.url, `/api/ws?token=${a.token}&room_id=${room.id}`));
  await c.close();
  await probeUpgrade(L.url, `/api/ws?token=${a.token}&room_id=${UNKNOWN_ID}`); // refused: logged too
  await probeUpgrade(L.url, `/ws?token=${a.token}x`);
  await sleep(300);
  const sig = a.token.split('.')[2];
  assert.ok(!L.stderr.includes(sig), 'no token in the log');
  assert.match(L.stderr, /token=REDACTED/, 'the query string is logged redacted');
});

// =====================================================================================
// 3. Membership
// =====================================================================================

test('membership: removal closes the chatroom socket (1008 "not a member") and silences the room on the sidebar; an added member hears it', async () => {
  const a = await newUser(S, 'mba');
  const b = await newUser(S, 'mbb');
  const c = await newUser(S, 'mbc');
  const d = await newUser(S, 'mbd');
  const room = await group(a, [b, c], 'mem');
  const keep = await group(a, [b], 'keep');
  const bSide = await sidebar(S, b); const bRoom = await chatroom(S, b, room.id);
  const cRoom = await chatroom(S, c, room.id);
  const dSide = await sidebar(S, d);
  await sleep(150);
  bSide.drain(); dSide.drain();

  const mark = bSide.all.length;
  const r = await a.api.del(`/api/chatrooms/${room.id}/members/${b.user.id}`);
  assertStatus(r, 204, 'remove b');
  const closed = await Promise.race([bRoom.closed, sleep(3000).then(() => null)]);
  assert.deepEqual(closed, { code: 1008, reason: 'not a member' }, 'removed member\'s chatroom socket');
  // Leaving by oneself does the same.
  assertStatus(await c.api.del(`/api/chatrooms/${room.id}/members/${c.user.id}`), 204, 'c leaves');
  const cClosed = await Promise.race([cRoom.closed, sleep(3000).then(() => null)]);
  assert.deepEqual(cClosed, { code: 1008, reason: 'not a member' }, 'leaver\'s chatroom socket');
  // Reconnecting is refused now.
  assert.equal((await probeUpgrade(S.url, `/api/ws?token=${b.token}&room_id=${room.id}`)).status, 403);

  await send(a, room.id, 'after removal');
  const k = await send(a, keep.id, 'still here');
  const ev = await bSide.next('new_message');
  assert.deepEqual(ev.data, k, 'sidebar still gets other rooms');
  await sleep(200);
  const leaked = bSide.all.slice(mark).filter((e) => e.data?.room_id === room.id);
  assert.deepEqual(leaked, [{ type: 'room_left', data: { room_id: room.id } }], 'removed member\'s sidebar gets no event of the room but its room_left');
  assert.ok(!bSide.all.some((e) => e.type === 'new_message' && e.data.room_id === room.id), 'no new_message of the left room');
  assert.equal(bSide.closeInfo, null, 'sidebar stays open');

  // d is added: from then on its sidebar gets the room's events.
  await dSide.expectNone(null, 0);
  assertStatus(await a.api.post(`/api/chatrooms/${room.id}/members`, { user_id: d.user.id }), 200, 'add d');
  const m = await send(a, room.id, 'welcome d');
  assert.deepEqual((await dSide.next('new_message')).data, m, 'added member hears new messages');
  // (A join may announce the badge first; the contract does not require it.)
  let up = await dSide.next('unread_count_update');
  if (up.data.last_seq < m.seq) {
    assertUnread(up, { room_id: room.id, unread_count: 0, total_unread: 0, last_seq: m.seq - 1 }, 'added member on join: history is not unread');
    up = await dSide.next('unread_count_update');
  }
  assertUnread(up, { room_id: room.id, unread_count: 1, total_unread: 1, last_seq: m.seq }, 'added member after the message');
  // And may now open a chatroom socket.
  const dRoom = await chatroom(S, d, room.id);
  assertConnected(dRoom.connected, d.user.id, room.id);
});

test('membership events: room_updated to every member on creation, add, removal and leave; room_left to the one who goes; nothing to anyone else', async () => {
  const a = await newUser(S, 'rua');
  const b = await newUser(S, 'rub');
  const c = await newUser(S, 'ruc');
  const d = await newUser(S, 'rud'); // never a member of the room
  const e = await newUser(S, 'rue'); // added later
  const side = {};
  for (const [n, u] of Object.entries({ a, b, c, d, e })) side[n] = await sidebar(S, u);
  const byId = (x, y) => (BigInt(x.id) < BigInt(y.id) ? -1 : 1);
  const users = (...us) => us.map((u) => u.user).sort(byId);
  const expected = (members, name = 'ru room', type = 'group') => ({ type: 'room_updated', data: { room_id: room.id, name, type, members } });
  const membership = (ev) => (ev.type === 'room_updated' || ev.type === 'room_left');
  const ofRoom = (client, id) => client.all.filter((ev) => membership(ev) && ev.data?.room_id === id);

  // Created: its first members hear of it, with the members as REST shows them.
  const room = await group(a, [b, c], 'ru room');
  assert.deepEqual(room.members, users(a, b, c), 'REST members (the shape room_updated uses)');
  const created = expected(users(a, b, c));
  for (const n of ['a', 'b', 'c']) {
    const ev = await side[n].next(where('room_updated', (x) => x.type === 'room_updated' && x.data.room_id === room.id));
    assert.deepEqual(keys(ev.data), ['members', 'name', 'room_id', 'type'], `${n}: room_updated fields`);
    assert.deepEqual(ev, created, `${n}: room_updated on creation`);
  }
  const bRoom = await chatroom(S, b, room.id);

  // e added by b (any member may add): everyone, e included, and b's chatroom socket of the room.
  assertStatus(await b.api.post(`/api/chatrooms/${room.id}/members`, { user_id: e.user.id }), 200, 'add e');
  const added = expected(users(a, b, c, e));
  // Adding a present member changes nothing: no event.
  assertStatus(await a.api.post(`/api/chatrooms/${room.id}/members`, { user_id: e.user.id }), 200, 'add e again');
  // c removed by the creator: c gets room_left, those who stay the room without c.
  assertStatus(await a.api.del(`/api/chatrooms/${room.id}/members/${c.user.id}`), 204, 'remove c');
  const removed = expected(users(a, b, e));
  // b leaves: room_left on b's sidebar, b's chatroom socket closed, the others without b.
  assertStatus(await b.api.del(`/api/chatrooms/${room.id}/members/${b.user.id}`), 204, 'b leaves');
  const leftB = expected(users(a, e));
  const closed = await Promise.race([bRoom.closed, sleep(3000).then(() => null)]);
  assert.deepEqual(closed, { code: 1008, reason: 'not a member' }, 'the leaver\'s chatroom socket');
  // A direct room between a and e: both, as type direct without a name.
  const dr = await a.api.post('/api/chatrooms', { type: 'direct', member_ids: [e.user.id] });
  assertStatus(dr, 201, 'direct room');
  // A last room with everyone: on one instance every socket gets the events in the order of
  // these calls, so once a sidebar has this one it has everything before it.
  const marker = await group(a, [b, c, d, e], 'ru marker');
  for (const n of Object.keys(side)) await side[n].next(where('marker', (x) => x.type === 'room_updated' && x.data.room_id === marker.id));

  const left = { type: 'room_left', data: { room_id: room.id } };
  assert.deepEqual(ofRoom(side.a, room.id), [created, added, removed, leftB], 'a (creator)');
  assert.deepEqual(ofRoom(side.b, room.id), [created, added, removed, left], 'b: until it left, then room_left');
  assert.deepEqual(ofRoom(side.c, room.id), [created, added, left], 'c: until removed, then room_left');
  assert.deepEqual(ofRoom(side.e, room.id), [added, removed, leftB], 'e: from its add on');
  assert.deepEqual(ofRoom(side.d, room.id), [], 'd (never a member): nothing');
  assert.deepEqual(ofRoom(bRoom, room.id), [added, removed], 'b\'s chatroom socket: the room\'s updates while b is a member, no room_left');
  const direct = { type: 'room_updated', data: { room_id: dr.body.id, name: null, type: 'direct', members: users(a, e) } };
  for (const n of ['a', 'e']) assert.deepEqual(ofRoom(side[n], dr.body.id), [direct], `${n}: the direct room`);
  for (const n of ['b', 'c', 'd']) assert.deepEqual(ofRoom(side[n], dr.body.id), [], `${n}: not of the direct room`);
  // Creating the existing direct room again changes nothing: no event (the marker again proves it).
  assertStatus(await e.api.post('/api/chatrooms', { type: 'direct', member_ids: [a.user.id] }), 200, 'direct room again');
  assertStatus(await a.api.post(`/api/chatrooms/${marker.id}/members`, { user_id: e.user.id }), 200, 'no-op add');
  assertStatus(await e.api.del(`/api/chatrooms/${marker.id}/members/${e.user.id}`), 204, 'e leaves the marker');
  await side.a.next(where('marker without e', (x) => x.type === 'room_updated' && x.data.room_id === marker.id && x.data.members.length === 4));
  await side.e.next(where('room_left of the marker', (x) => x.type === 'room_left' && x.data.room_id === marker.id));
  for (const n of ['a', 'e']) assert.deepEqual(ofRoom(side[n], dr.body.id), [direct], `${n}: one room_updated for the direct room`);
  assert.equal(ofRoom(side.a, marker.id).length, 2, 'a: the marker created, then without e (nothing for the no-op add)');
});

// =====================================================================================
// 4. Ordering and exactly-once under concurrent senders
// =====================================================================================

test('4 concurrent senders × 50: every member gets every message once (own ones as echo), in strictly increasing seq', async () => {
  const senders = await Promise.all([0, 1, 2, 3].map(() => newUser(S, 'ord')));
  const obs = await newUser(S, 'obs');
  const room = await group(senders[0], [...senders.slice(1), obs], 'order');
  const obsSide = await sidebar(S, obs); const obsRoom = await chatroom(S, obs, room.id);
  const sRooms = await Promise.all(senders.map((s) => chatroom(S, s, room.id)));
  const sSides = await Promise.all(senders.map((s) => sidebar(S, s)));
  await sleep(150);
  const N = 50;
  const sentBy = new Map(); // seq → sender index
  await Promise.all(senders.map(async (s, i) => {
    // Each sender keeps 3 requests in flight.
    let next = 0;
    await Promise.all([0, 1, 2].map(async () => {
      while (next < N) {
        const k = next++;
        // A send shed at the entrance (503, nothing stored) goes again with the same id.
        const m = await send(s, room.id, `s${i}-${k}`, { client_msg_id: `ord-${i}-${k}` });
        sentBy.set(m.seq, i);
      }
    }));
  }));
  const total = senders.length * N;
  assert.deepEqual([...sentBy.keys()].sort((x, y) => x - y), range(1, total), 'REST seqs 1..total');
  const check = async (x, expectSeqs, who, own) => {
    const evs = await x.take('new_message', expectSeqs.length, 15000);
    const got = evs.map((e) => e.data.seq);
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `${who}: seq ${got[i]} after ${got[i - 1]}`);
    assert.deepEqual(got, expectSeqs, `${who}: exactly the expected seqs`);
    for (const e of evs) {
      assert.equal(e.data.room_id, room.id);
      assert.equal(e.data.echo === true, sentBy.get(e.data.seq) === own, `${who}: echo:true exactly on its own messages`);
    }
  };
  const all = range(1, total);
  await check(obsSide, all, 'observer sidebar', -1);
  await check(obsRoom, all, 'observer chatroom', -1);
  for (let i = 0; i < senders.length; i++) {
    await check(sRooms[i], all, `sender ${i} chatroom`, i);
    await check(sSides[i], all, `sender ${i} sidebar`, i);
  }
  await sleep(300);
  for (const x of [obsSide, obsRoom, ...sRooms, ...sSides]) await x.expectNone('new_message', 0);
  // The observer's last badge says all `total` are unread.
  const ups = obsSide.all.filter((e) => e.type === 'unread_count_update');
  assert.deepEqual(ups.at(-1).data, { room_id: room.id, unread_count: total, total_unread: total, last_seq: total });
  for (let i = 1; i < ups.length; i++) assert.ok(ups[i].data.last_seq >= ups[i - 1].data.last_seq, 'badge last_seq never goes back');
});

// =====================================================================================
// 5. Resume
// =====================================================================================

test('resume: after_seq=N replays exactly seq > N right after connected, then live; none when up to date', async () => {
  const a = await newUser(S, 'rsa');
  const b = await newUser(S, 'rsb');
  const room = await group(a, [b], 'resume');
  const msgs = [];
  for (let i = 1; i <= 10; i++) msgs.push(await send(a, room.id, `m${i}`));
  const c = await chatroom(S, b, room.id, 4);
  assertConnected(c.connected, b.user.id, room.id);
  const replay = await c.take('new_message', 6);
  assert.deepEqual(replay.map((e) => e.data), msgs.slice(4), 'replayed messages, exact, in order');
  assert.deepEqual(c.all.slice(1, 7).map((e) => e.type), Array(6).fill('new_message'), 'replay comes right after connected');
  const live = await send(a, room.id, 'live');
  assert.deepEqual((await c.next('new_message')).data, live);
  await c.expectNone('new_message', 200);

  const up = await chatroom(S, b, room.id, 11);
  await up.expectNone('new_message', 300);
  const zero = await chatroom(S, b, room.id, 0);
  const allMsgs = await zero.take('new_message', 11);
  assert.deepEqual(allMsgs.map((e) => e.data.seq), range(1, 11));
  await zero.expectNone('new_message', 200);
  // A malformed after_seq is refused before the upgrade.
  assert.equal((await probeUpgrade(S.url, `/api/ws?token=${b.token}&room_id=${room.id}&after_seq=-1`)).status, 400);
  assert.equal((await probeUpgrade(S.url, `/api/ws?token=${b.token}&room_id=${room.id}&after_seq=abc`)).status, 400);
});

test('resume under racing sends: repeated reconnects with after_seq=last seen → union is 1..total, no gap, no duplicate', async () => {
  const a = await newUser(S, 'rra');
  const b = await newUser(S, 'rrb');
  const room = await group(a, [b], 'race');
  let sending = true;
  let sent = 0;
  const sender = (async () => {
    while (sending) {
      await Promise.all([send(a, room.id, `x${sent}`), send(a, room.id, `y${sent}`)]);
      sent += 2;
    }
  })();
  const got = [];
  let last = 0;
  for (let round = 0; round < 8; round++) {
    const c = track(await open(S.url, `/api/ws?token=${b.token}&room_id=${room.id}&after_seq=${last}`));
    await sleep(80 + Math.random() * 120);
    // Abrupt disconnect on odd rounds, clean close on even ones.
    if (round % 2) c.ws.terminate(); else c.ws.close();
    await c.closed;
    for (const e of c.all) if (e.type === 'new_message') { got.push(e.data.seq); last = e.data.seq; }
  }
  sending = false;
  await sender;
  const total = sent;
  const c = track(await open(S.url, `/api/ws?token=${b.token}&room_id=${room.id}&after_seq=${last}`));
  const deadline = Date.now() + 10000;
  while (last < total && Date.now() < deadline) {
    const e = await c.next('new_message', Math.max(1, deadline - Date.now()));
    got.push(e.data.seq);
    last = e.data.seq;
  }
  await c.expectNone('new_message', 200);
  for (const e of c.drain('new_message')) got.push(e.data.seq);
  assert.ok(total >= 20, `the sender made progress (${total})`);
  const dups = got.filter((s, i) => got.indexOf(s) !== i);
  assert.deepEqual(dups, [], 'no duplicate');
  assert.deepEqual(got, range(1, total), 'every seq exactly once, in order');
});

test('sidebar opened under racing sends: snapshot, then new_message for every seq after its last_seq, once, in order (none it counts)', async () => {
  const a = await newUser(S, 'sra');
  const b = await newUser(S, 'srb');
  const room = await group(a, [b], 'race');
  let sending = true;
  let sent = 0;
  // Three sends at a time while sockets open: a send shed by a busy server (503 unavailable,
  // CONTRACT.md "Keep-alive") is sent again after its Retry-After.
  const sendShed = (k) => retryShed(() => a.api.post(`/api/chatrooms/${room.id}/messages`, { content: k }))
    .then((r) => assertStatus(r, 201, 'send'));
  const sender = (async () => {
    while (sending) {
      await Promise.all([sendShed(`x${sent}`), sendShed(`y${sent}`), sendShed(`z${sent}`)]);
      sent += 3;
    }
  })();
  try {
    for (let round = 0; round < 10; round++) {
      // The first socket of each user (a fresh registration: the snapshot is read while the
      // messages commit), the sender's (echoes) and a receiver's.
      const socks = [[b, await sidebar(S, b)], [a, await sidebar(S, a)]];
      await sleep(60 + Math.random() * 90);
      for (const [u, c] of socks) {
        c.ws.close();
        await c.closed;
        const snap = c.all.find((e) => e.type === 'unread_count_update' && e.data.room_id === room.id);
        assert.ok(snap, `round ${round}: a snapshot badge for the room`);
        assert.ok(c.all.indexOf(snap) <= 1, `round ${round}: the snapshot comes right after connected`);
        const seqs = c.all.filter((e) => e.type === 'new_message').map((e) => e.data.seq);
        const L = snap.data.last_seq;
        assert.deepEqual(seqs, range(L + 1, L + seqs.length), `round ${round} ${u.user.username}: every seq after the snapshot's ${L}, once, in order`);
        const echo = c.all.filter((e) => e.type === 'new_message').every((e) => (e.data.echo === true) === (u === a));
        assert.ok(echo, `round ${round}: echo exactly on the sender's own messages`);
      }
    }
  } finally {
    sending = false;
    await sender;
  }
  assert.ok(sent >= 30, `the sender made progress (${sent})`);
});

test('resume: more than 1,000 missing → resync_required {room_id,last_seq}; exactly 1,000 → replayed', async () => {
  const a = await newUser(S, 'rza');
  const b = await newUser(S, 'rzb');
  const room = await group(a, [b], 'resync');
  const total = 1002;
  let next = 1;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next <= total) { next++; await send(a, room.id, `bulk ${next}`); }
  }));
  const info = await a.api.get(`/api/chatrooms/${room.id}`);
  assert.equal(info.body.last_seq, total);
  let lastSeq = total;
  for (const after of [0, 1]) {
    const c = await chatroom(S, b, room.id, after);
    const ev = await c.next(null);
    assert.equal(ev.type, 'resync_required', `after_seq=${after}: ${JSON.stringify(ev).slice(0, 200)}`);
    assert.deepEqual(ev.data, { room_id: room.id, last_seq: lastSeq }, 'resync_required fields');
    await c.expectNone('new_message', 200);
    // Live events still flow after it.
    const m = await send(a, room.id, 'live after resync');
    lastSeq = m.seq;
    assert.deepEqual((await c.next('new_message')).data, m);
    await c.close();
  }
  // Now last_seq = 1004: after_seq=4 means exactly 1,000 missing → replay.
  const c = await chatroom(S, b, room.id, 4);
  const evs = await c.take('new_message', 1000, 20000);
  assert.deepEqual(evs.map((e) => e.data.seq), range(5, 1004));
  assert.ok(!c.all.some((e) => e.type === 'resync_required'));
});

// =====================================================================================
// 6. Slow consumer
// =====================================================================================

test('slow consumer: a client that stops reading is closed; others get everything; sends stay prompt', async () => {
  // Small bounds, but with room for a healthy client: each message is ~16 KB and costs two
  // events (new_message + unread_count_update), and a reading client's queue was seen to
  // peak at ~8 events under this load. (A byte bound below one event's size would close
  // every client, fast or not.) The paused client must first fill the kernel's socket
  // buffers (~4 MB on loopback) before its queue grows, hence 600 × 16 KB.
  const Q = await server(['--ws-queue-max-events', '100', '--ws-queue-max-bytes', '524288', ...NO_COOLDOWN]);
  const a = await newUser(Q, 'sla');
  const fast = await newUser(Q, 'slf');
  const slow = await newUser(Q, 'sls');
  const room = await group(a, [fast, slow], 'slow');
  const f = track(await open(Q.url, `/api/ws?token=${fast.token}&room_id=${room.id}`));
  const s = track(await open(Q.url, `/api/ws?token=${slow.token}&room_id=${room.id}`));
  const sSide = track(await open(Q.url, `/ws?token=${slow.token}`));
  s.ws._socket.pause();
  sSide.ws._socket.pause();
  const big = 'x'.repeat(16000);
  const N = 600;
  let worst = 0;
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < N) {
      const k = next++;
      const t = Date.now();
      await send(a, room.id, `${k} ${big}`);
      worst = Math.max(worst, Date.now() - t);
    }
  }));
  const elapsed = Date.now() - t0;
  assert.ok(worst < 3000, `every send is prompt (slowest ${worst} ms)`);
  const evs = await f.take('new_message', N, 20000);
  assert.deepEqual(evs.map((e) => e.data.seq), range(1, N), 'the fast client got every message in order');
  assert.equal(f.closeInfo, null, 'the fast client stays open');
  const closes = await metric(Q, 'parley_ws_slow_consumer_closes_total');
  assert.ok(closes >= 1, `parley_ws_slow_consumer_closes_total >= 1 (got ${closes}); sends took ${elapsed} ms`);
  // The slow clients are closed: 1008 "slow consumer" if the close frame gets through, else
  // the TCP connection ends (1006 on the client side).
  s.ws._socket.resume();
  sSide.ws._socket.resume();
  for (const [who, x] of [['chatroom', s], ['sidebar', sSide]]) {
    const ci = await Promise.race([x.closed, sleep(10000).then(() => null)]);
    assert.ok(ci, `${who}: the slow client was closed`);
    assert.ok((ci.code === 1008 && ci.reason === 'slow consumer') || ci.code === 1006, `${who}: close ${JSON.stringify(ci)}`);
    const got = x.all.filter((e) => e.type === 'new_message').length;
    assert.ok(got < N, `${who}: the slow client did not get everything (${got})`);
  }
  const after = await metric(Q, 'parley_ws_slow_consumer_closes_total');
  assert.ok(after >= 2, `both slow sockets counted (${after})`);
});

// =====================================================================================
// 7. Keep-alive
// =====================================================================================

test('keep-alive: ping frames every interval; a silent raw client is closed after the idle timeout', async () => {
  const K = await server(['--ws-ping-interval-ms', '200', '--ws-idle-timeout-ms', '1000', ...NO_COOLDOWN]);
  const a = await newUser(K, 'kpa');
  const c = track(await open(K.url, `/ws?token=${a.token}`));
  const t0 = Date.now();
  const rc = await rawConnect(K.url, `/ws?token=${a.token}`);
  assert.equal(rc.status, 101);
  await sleep(1600);
  assert.ok(c.pings >= 4, `ws client got protocol pings (${c.pings} in 1.6 s)`);
  assert.equal(c.closeInfo, null, 'a client that answers pings stays open');
  // The raw client reads but never answers pings nor sends anything.
  const pings = rc.frames.filter((f) => f.opcode === 9).length;
  assert.ok(pings >= 1, `raw client saw ping frames (${pings})`);
  const r = await rc.waitClose(3000);
  assert.ok(r.ended || r.closeFrame, 'the silent client was closed');
  const at = (rc.endedAt ?? Date.now()) - t0;
  assert.ok(at >= 900 && at <= 2500, `closed after ~1 s (at ${at} ms)`);
  rc.sock.destroy();
});

// =====================================================================================
// 8. Shutdown
// =====================================================================================

test('SIGTERM: every socket gets close 1001 and the process exits 0', async () => {
  const T = await startServer({ args: NO_COOLDOWN });
  try {
    const a = await newUser(T, 'sda');
    const b = await newUser(T, 'sdb');
    const room = await group(a, [b], 'bye');
    const socks = [
      await open(T.url, `/ws?token=${a.token}`),
      await open(T.url, `/ws?token=${b.token}`),
      await open(T.url, `/api/ws?token=${a.token}&room_id=${room.id}`),
      await open(T.url, `/api/ws?token=${b.token}&room_id=${room.id}`),
    ];
    // A raw client that reads but never answers the close frame must not hold the exit up.
    const mute = await rawConnect(T.url, `/ws?token=${a.token}`);
    assert.equal(mute.status, 101);
    const t0 = Date.now();
    T.proc.kill('SIGTERM');
    const closes = await Promise.all(socks.map((s) => Promise.race([s.closed, sleep(10000).then(() => null)])));
    for (const ci of closes) assert.equal(ci?.code, 1001, `close ${JSON.stringify(ci)}`);
    const ex = await Promise.race([T.exited, sleep(10000).then(() => 'timeout')]);
    assert.deepEqual(ex, { code: 0, signal: null }, 'exit status');
    assert.ok(Date.now() - t0 < 10000, 'exit within 10 s');
    const mc = await mute.waitClose(1000);
    assert.equal(mc.code, 1001, 'the raw client saw close 1001 as well');
    mute.sock.destroy();
  } finally {
    await T.close();
  }
});

// =====================================================================================
// 9. Inbound rate limit
// =====================================================================================

test('inbound rate limit: 10 quick pings with 1/s burst 2 → some error rate_limited, one answer per frame', async () => {
  const R = await server(['--ws-inbound-per-sec', '1', '--ws-inbound-burst', '2', ...NO_COOLDOWN]);
  const a = await newUser(R, 'rla');
  const c = track(await open(R.url, `/ws?token=${a.token}`));
  await sleep(100);
  c.drain();
  for (let i = 0; i < 10; i++) c.send({ type: 'ping', data: { timestamp: i } });
  await sleep(500);
  const answers = c.drain().filter((e) => e.type === 'pong' || e.type === 'error');
  assert.equal(answers.length, 10, `one answer per frame: ${JSON.stringify(answers)}`);
  const pongs = answers.filter((e) => e.type === 'pong');
  const limited = answers.filter((e) => e.type === 'error' && e.data.code === 'rate_limited');
  assert.ok(pongs.length >= 2 && pongs.length <= 3, `burst of 2 answered (${pongs.length} pongs)`);
  assert.equal(limited.length, 10 - pongs.length, 'the rest are rate_limited errors');
  assert.deepEqual(pongs.map((p) => p.data.timestamp), range(0, pongs.length - 1), 'the first ones are answered');
  assert.equal(c.closeInfo, null, 'still open');
  await sleep(1100);
  c.send({ type: 'ping', data: { timestamp: 99 } });
  assert.equal((await c.next('pong')).data.timestamp, 99, 'tokens refill');
});
