// Sending over WebSocket and multi-device echo against a real `parley serve`
// (../../../shared/CONTRACT.md "Beyond the seed" → "Sending over WebSocket" and "Multi-device",
// docs/asyncapi.yaml):
//   - client → `send_message` {"room_id","content","client_msg_id"} on a sidebar or chatroom
//     socket; the sender gets `ack` {"client_msg_id","message"} or `error`
//     {"code","message","client_msg_id"}; others get `new_message` as for REST;
//   - one seq order and one idempotency (client_msg_id per sender and room) for REST and WS;
//   - every refusal stores nothing and sends nothing to anyone else;
//   - the per-connection inbound limit answers excess sends with `rate_limited`;
//   - the sender's other connections get `new_message` with "echo":true (every connection for
//     a REST send, all but the sending one for a WS send); the sender's badge stays 0.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/ws_send.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, assertStatus, assertMessage, createGroupOk as group, sendOk } from './lib/rest-helpers.mjs';
import { open, plainNewMessage } from './lib/ws-client.mjs';

const UNKNOWN_ID = '987654321987654321';
const MAX_CONTENT = 16384;

const { server, track } = useSuite();
let S; // main server: no cooldown, default inbound limit (20/s, burst 40)
before(async () => { S = await server(NO_COOLDOWN); });

// ---- helpers ----
const keys = (o) => Object.keys(o).sort();
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const show = (x) => JSON.stringify(x)?.slice(0, 400);

const restSend = sendOk;
const sidebar = async (srv, u) => track(await open(srv.url, `/ws?token=${u.token}`));
const chatroom = async (srv, u, roomId) => track(await open(srv.url, `/api/ws?token=${u.token}&room_id=${roomId}`));
// Lets the `connected` snapshot settle, then forgets it.
async function settle(...socks) {
  await sleep(150);
  for (const x of socks) x.drain();
}

// The whole history of a room over REST (ascending seq).
async function history(u, roomId) {
  const out = [];
  for (let after = 0; ;) {
    const r = await u.api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assertStatus(r, 200, 'history');
    out.push(...r.body.messages);
    if (!r.body.has_more) return out;
    after = r.body.messages.at(-1).seq;
  }
}
async function lastSeq(u, roomId) {
  const r = await u.api.get(`/api/chatrooms/${roomId}`);
  assertStatus(r, 200, 'get room');
  return r.body.last_seq;
}

// Asserts an `ack` for cmid and returns its message.
function assertAck(ev, cmid, expected = {}, what = 'ack') {
  assert.equal(ev.type, 'ack', `${what}: expected ack for client_msg_id ${show(cmid)}, got ${show(ev)}`);
  assert.ok(ev.data && typeof ev.data === 'object', `${what}: data ${show(ev)}`);
  for (const k of ['client_msg_id', 'message']) assert.ok(k in ev.data, `${what}: ack without ${k}: ${show(ev)}`);
  assert.equal(ev.data.client_msg_id, cmid, `${what}: ack.client_msg_id`);
  assertMessage(ev.data.message, { client_msg_id: cmid, ...expected });
  return ev.data.message;
}

// Asserts the `error` answer to a send (code: one code or a list of acceptable ones). cmid: the client_msg_id it must carry; NONE: it must
// carry none; GIVEN_OR_NONE(x): either none or exactly x (a malformed one that was given).
const NONE = Symbol('none');
const GIVEN_OR_NONE = (x) => ({ givenOrNone: x });
function assertSendError(ev, code, cmid, what) {
  assert.equal(ev.type, 'error', `${what}: expected error ${code}, got ${show(ev)}`);
  const d = ev.data;
  assert.ok(d && typeof d === 'object', `${what}: data ${show(ev)}`);
  if (Array.isArray(code)) assert.ok(code.includes(d.code), `${what}: error code ${show(d.code)}, expected one of ${code} (${show(d)})`);
  else assert.equal(d.code, code, `${what}: error code (${show(d)})`);
  assert.equal(typeof d.message, 'string', `${what}: error.message`);
  assert.ok(d.message.length > 0, `${what}: error.message non-empty`);
  if (cmid === NONE) assert.ok(!('client_msg_id' in d), `${what}: no client_msg_id was given, the error carries ${show(d.client_msg_id)}`);
  else if (cmid && typeof cmid === 'object' && 'givenOrNone' in cmid) {
    assert.ok(!('client_msg_id' in d) || d.client_msg_id === cmid.givenOrNone, `${what}: client_msg_id ${show(d.client_msg_id)}`);
  } else assert.equal(d.client_msg_id, cmid, `${what}: the error carries the client_msg_id`);
}

// The frame others get: the message exactly, without echo (or echo false).
function assertPlain(ev, m, what) {
  assert.equal(ev.type, 'new_message', `${what}: ${show(ev)}`);
  assert.ok(!('echo' in ev.data) || ev.data.echo === false, `${what}: a member other than the sender gets no echo flag: ${show(ev.data)}`);
  const { echo: _e, ...rest } = ev.data;
  assert.deepEqual(rest, m, `${what}: new_message carries the stored message exactly`);
}
// The frame the sender's other connections get: the message exactly, with echo:true.
function assertEchoOf(ev, m, what) {
  assert.equal(ev.type, 'new_message', `${what}: ${show(ev)}`);
  assert.equal(ev.data.echo, true, `${what}: the sender's other connection gets echo:true: ${show(ev.data)}`);
  const { echo: _e, ...rest } = ev.data;
  assert.deepEqual(rest, m, `${what}: the echo carries the stored message exactly`);
}

// =====================================================================================
// 1. send_message → ack, new_message to others, stored
// =====================================================================================

test('sidebar socket: send_message → ack with the stored message; every other member\'s connection gets it once; REST has it', async () => {
  const a = await newUser(S, 'wsa');
  const b = await newUser(S, 'wsb');
  const c = await newUser(S, 'wsc');
  const d = await newUser(S, 'wsd'); // not a member
  const room = await group(a, [b, c], 'ws send');
  const aSide = await sidebar(S, a);
  const bSide = await sidebar(S, b); const bRoom = await chatroom(S, b, room.id);
  const cSide = await sidebar(S, c);
  const dSide = await sidebar(S, d);
  await settle(aSide, bSide, bRoom, cSide, dSide);

  const content = 'héllo wörld 👋';
  const ev = await aSide.request({ room_id: room.id, content, client_msg_id: 'side-1' });
  const m = assertAck(ev, 'side-1', { room_id: room.id, sender_id: a.user.id, content, seq: 1 }, 'sidebar send');

  // Stored exactly as acknowledged.
  const hist = await history(a, room.id);
  assert.equal(hist.length, 1, 'one message stored');
  assert.deepEqual(hist[0], m, 'REST history holds the acknowledged message');
  const one = await b.api.get(`/api/messages/${m.id}`);
  assertStatus(one, 200, 'GET /api/messages/:id');
  assert.deepEqual(one.body, m, 'GET /api/messages/:id');
  assert.equal(await lastSeq(b, room.id), 1, 'last_seq');

  for (const [who, x] of [['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]]) {
    assertPlain(await x.next('new_message'), m, who);
  }
  // Badges: the others' counts grew, the sender's did not.
  for (const [who, x] of [['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]]) {
    const u = await x.next('unread_count_update');
    assert.deepEqual(u.data, { room_id: room.id, unread_count: 1, total_unread: 1, last_seq: 1 }, `${who} badge`);
  }
  const mine = await a.api.get('/api/messages/unread-counts');
  assert.deepEqual(mine.body, { unread_counts: { [room.id]: 0 }, total: 0 }, 'the sender\'s unread counts');

  await sleep(300);
  for (const [who, x] of [['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]]) {
    assert.equal(x.drain('new_message').length, 0, `${who}: exactly one new_message`);
  }
  assert.ok(!aSide.all.some((e) => e.type === 'new_message'), 'the sending connection gets only its ack, no new_message');
  assert.ok(!aSide.all.some((e) => e.type === 'error'), `no error on the sending connection: ${show(aSide.all)}`);
  assert.deepEqual(dSide.drain(), [], 'a non-member hears nothing');
  for (const e of aSide.all.filter((x) => x.type === 'unread_count_update')) {
    assert.equal(e.data.unread_count, 0, `the sender's badge stays 0: ${show(e)}`);
  }
  assert.equal(aSide.closeInfo, null, 'the sending connection stays open');
});

test('chatroom socket: send_message with room_id left out or given → ack; another room → invalid_request, nothing stored anywhere', async () => {
  const a = await newUser(S, 'cra');
  const b = await newUser(S, 'crb');
  const room = await group(a, [b], 'chatroom send');
  const other = await group(a, [b], 'other room'); // a is a member here too
  const aRoom = await chatroom(S, a, room.id);
  const bRoom = await chatroom(S, b, room.id); const bOther = await chatroom(S, b, other.id);
  const bSide = await sidebar(S, b);
  await settle(aRoom, bRoom, bOther, bSide);

  const m1 = assertAck(await aRoom.request({ content: 'no room_id', client_msg_id: 'cr-1' }), 'cr-1',
    { room_id: room.id, sender_id: a.user.id, content: 'no room_id', seq: 1 }, 'room_id left out');
  const m2 = assertAck(await aRoom.request({ room_id: room.id, content: 'own room_id', client_msg_id: 'cr-2' }), 'cr-2',
    { room_id: room.id, sender_id: a.user.id, content: 'own room_id', seq: 2 }, 'own room_id');
  assertSendError(await aRoom.request({ room_id: other.id, content: 'elsewhere', client_msg_id: 'cr-3' }),
    'invalid_request', 'cr-3', 'another room_id on a chatroom socket');
  // An unknown room is another room too; whether the mismatch or the lookup answers first is
  // the server's choice.
  assertSendError(await aRoom.request({ room_id: UNKNOWN_ID, content: 'nowhere', client_msg_id: 'cr-4' }),
    ['invalid_request', 'not_found'], 'cr-4', 'an unknown room_id on a chatroom socket');

  for (const [who, x] of [['b chatroom', bRoom], ['b sidebar', bSide]]) {
    const evs = await x.take('new_message', 2);
    assertPlain(evs[0], m1, `${who} #1`);
    assertPlain(evs[1], m2, `${who} #2`);
  }
  assert.deepEqual(await history(a, room.id), [m1, m2], 'REST history of the socket\'s room');
  assert.equal(await lastSeq(a, other.id), 0, 'nothing stored in the other room');
  await sleep(300);
  assert.equal(bRoom.drain('new_message').length, 0, 'b chatroom: nothing more');
  assert.equal(bSide.drain('new_message').length, 0, 'b sidebar: nothing more');
  assert.equal(bOther.drain('new_message').length, 0, 'b chatroom of the other room: nothing');
  assert.ok(!aRoom.all.some((e) => e.type === 'new_message'), 'the sending connection gets only acks');
  assert.equal(aRoom.closeInfo, null, 'a refused send leaves the connection open');
});

test('REST and WebSocket sends interleaved (sidebar, chatroom, REST, concurrently) share one gap-free seq order', async () => {
  const a = await newUser(S, 'ila'); // sends over its sidebar
  const b = await newUser(S, 'ilb'); // sends over REST
  const c = await newUser(S, 'ilc'); // sends over its chatroom socket
  const obs = await newUser(S, 'ilo');
  const room = await group(a, [b, c, obs], 'interleaved');
  const aSide = await sidebar(S, a);
  const cRoom = await chatroom(S, c, room.id);
  const obsSide = await sidebar(S, obs); const obsRoom = await chatroom(S, obs, room.id);
  await settle(aSide, cRoom, obsSide, obsRoom);

  const N = 20; // per sender; below the default inbound burst of 40
  const sent = []; // [message, how]
  const wsSender = async (sock, who, roomId) => {
    // All frames at once (pipelined), then collect each one's answer.
    const cmids = range(1, N).map((i) => `${who}-${i}`);
    for (const cm of cmids) sock.sendMessage({ ...(roomId ? { room_id: roomId } : {}), content: `${who} ${cm}`, client_msg_id: cm });
    for (const cm of cmids) sent.push([assertAck(await sock.reply(cm), cm, { room_id: room.id, content: `${who} ${cm}` }, `${who} ${cm}`), who]);
  };
  const restSender = async () => {
    await Promise.all([0, 1, 2].map(async (w) => {
      for (let i = w; i < N; i += 3) sent.push([await restSend(b, room.id, `rest ${i}`), 'rest']);
    }));
  };
  await Promise.all([wsSender(aSide, 'side', room.id), wsSender(cRoom, 'room', undefined), restSender()]);

  const total = 3 * N;
  const bySeq = [...sent].sort((x, y) => x[0].seq - y[0].seq);
  assert.deepEqual(bySeq.map(([m]) => m.seq), range(1, total), 'the seqs of every answer (ack or 201) are 1..total, no gap, no repeat');
  assert.equal(new Set(sent.map(([m]) => m.id)).size, total, 'distinct ids');
  const hist = await history(obs, room.id);
  assert.deepEqual(hist, bySeq.map(([m]) => m), 'REST history is exactly the acknowledged messages in seq order');
  for (const [who, x] of [['observer sidebar', obsSide], ['observer chatroom', obsRoom]]) {
    const evs = await x.take('new_message', total, 15000);
    assert.deepEqual(evs.map((e) => e.data.seq), range(1, total), `${who}: every message once, in seq order`);
    evs.forEach((e, i) => assertPlain(e, hist[i], `${who} #${i + 1}`));
  }
  await sleep(300);
  assert.equal(obsSide.drain('new_message').length + obsRoom.drain('new_message').length, 0, 'no duplicate for the observer');
});

// =====================================================================================
// 2. Idempotency: one client_msg_id space for REST and WS
// =====================================================================================

test('idempotency: a WS retry, WS then REST and REST then WS with the same client_msg_id → the original message, nothing new stored or sent', async () => {
  const a = await newUser(S, 'ida');
  const b = await newUser(S, 'idb');
  const room = await group(a, [b], 'idempotent');
  const room2 = await group(a, [b], 'idempotent 2');
  const aSide = await sidebar(S, a); const aRoom = await chatroom(S, a, room.id);
  const bSide = await sidebar(S, b);
  await settle(aSide, aRoom, bSide);

  // WS retry on the same connection, then on another connection of the same user, then with
  // other content: always the original.
  const m1 = assertAck(await aSide.request({ room_id: room.id, content: 'first', client_msg_id: 'dup-1' }), 'dup-1', { seq: 1, content: 'first' });
  assert.deepEqual(assertAck(await aSide.request({ room_id: room.id, content: 'first', client_msg_id: 'dup-1' }), 'dup-1'), m1, 'WS retry, same connection');
  assert.deepEqual(assertAck(await aRoom.request({ content: 'first', client_msg_id: 'dup-1' }), 'dup-1'), m1, 'WS retry on another connection');
  assert.deepEqual(assertAck(await aSide.request({ room_id: room.id, content: 'changed', client_msg_id: 'dup-1' }), 'dup-1'), m1, 'WS retry with other content');
  // WS then REST.
  const rest1 = await restSend(a, room.id, 'first', { client_msg_id: 'dup-1' }, 200);
  assert.deepEqual(rest1, m1, 'REST retry of a WS send: 200 with the original');
  // REST then WS.
  const m2 = await restSend(a, room.id, 'via rest', { client_msg_id: 'dup-2' }, 201);
  assert.equal(m2.seq, 2);
  assert.deepEqual(assertAck(await aSide.request({ room_id: room.id, content: 'via rest', client_msg_id: 'dup-2' }), 'dup-2'), m2, 'WS retry of a REST send');
  assert.deepEqual(assertAck(await aRoom.request({ content: 'via rest', client_msg_id: 'dup-2' }), 'dup-2'), m2, 'WS retry of a REST send, chatroom socket');
  // Scope: per sender and room. The same id by another user, or in another room, is new.
  const bm = assertAck(await bSide.request({ room_id: room.id, content: 'b uses dup-1', client_msg_id: 'dup-1' }), 'dup-1',
    { seq: 3, sender_id: b.user.id, content: 'b uses dup-1' }, 'same client_msg_id by another sender');
  const r2m = assertAck(await aSide.request({ room_id: room2.id, content: 'room 2', client_msg_id: 'dup-1' }), 'dup-1',
    { seq: 1, room_id: room2.id, content: 'room 2' }, 'same client_msg_id in another room');

  assert.deepEqual(await history(a, room.id), [m1, m2, bm], 'history: each message once');
  assert.deepEqual(await history(a, room2.id), [r2m], 'history of room 2');
  const bGot = await bSide.take(plainNewMessage, 3);
  assert.deepEqual(bGot.map((e) => e.data.id), [m1.id, m2.id, r2m.id], 'b got each of a\'s messages exactly once');
  await sleep(300);
  assert.equal(bSide.drain(plainNewMessage).length, 0, 'b: no new_message for a retry');
});

test('idempotency under a race: the same client_msg_id over two sockets and REST at once → one message, every answer the same', async () => {
  const a = await newUser(S, 'rca');
  const b = await newUser(S, 'rcb');
  const room = await group(a, [b], 'race');
  const s1 = await sidebar(S, a); const s2 = await sidebar(S, a); const cr = await chatroom(S, a, room.id);
  const bSide = await sidebar(S, b);
  await settle(s1, s2, cr, bSide);
  const ROUNDS = 8;
  for (let i = 0; i < ROUNDS; i++) {
    const cm = `race-${i}`;
    const content = `race ${i}`;
    s1.sendMessage({ room_id: room.id, content, client_msg_id: cm });
    s2.sendMessage({ room_id: room.id, content, client_msg_id: cm });
    cr.sendMessage({ content, client_msg_id: cm });
    const [rest, e1, e2, e3] = await Promise.all([
      a.api.post(`/api/chatrooms/${room.id}/messages`, { content, client_msg_id: cm }), s1.reply(cm), s2.reply(cm), cr.reply(cm)]);
    assert.ok(rest.status === 200 || rest.status === 201, `round ${i}: REST ${rest.status} ${show(rest.body)}`);
    const m = rest.body;
    assertMessage(m, { seq: i + 1, client_msg_id: cm, content });
    for (const [who, e] of [['sidebar 1', e1], ['sidebar 2', e2], ['chatroom', e3]]) {
      assert.deepEqual(assertAck(e, cm, {}, `round ${i} ${who}`), m, `round ${i} ${who}: the same message as REST`);
    }
  }
  assert.equal(await lastSeq(a, room.id), ROUNDS, 'one message per round');
  const got = await bSide.take(plainNewMessage, ROUNDS);
  assert.deepEqual(got.map((e) => e.data.seq), range(1, ROUNDS), 'b got one new_message per round');
  await sleep(300);
  assert.equal(bSide.drain(plainNewMessage).length, 0, 'b: no duplicate');
});

// =====================================================================================
// 3. Refusals: error with the code and client_msg_id; nothing stored, nothing sent
// =====================================================================================

test('refusals: non-member, unknown or malformed room, missing room_id on a sidebar, bad content, bad client_msg_id → error; nothing stored or sent', async () => {
  const a = await newUser(S, 'rfa');
  const b = await newUser(S, 'rfb');
  const o = await newUser(S, 'rfo'); // not a member
  const room = await group(a, [b], 'refusals');
  const aSide = await sidebar(S, a);
  const aRoom = await chatroom(S, a, room.id);
  const bSide = await sidebar(S, b); const bRoom = await chatroom(S, b, room.id);
  const oSide = await sidebar(S, o);
  await settle(aSide, aRoom, bSide, bRoom, oSide);

  let n = 0;
  const cm = () => `rf-${++n}`;
  const refuse = async (sock, data, code, expectCmid, what) => {
    const ev = await sock.request(data);
    assertSendError(ev, code, expectCmid === undefined ? data.client_msg_id : expectCmid, what);
  };
  const send = (data) => ({ room_id: room.id, content: 'x', client_msg_id: cm(), ...data });

  // Who and where.
  await refuse(oSide, send({}), 'forbidden', undefined, 'non-member');
  await refuse(aSide, send({ room_id: UNKNOWN_ID }), 'not_found', undefined, 'unknown room');
  for (const bad of ['abc', '01', '-1', '', '1234567890123456789', 12, null, ['1'], { id: room.id }]) {
    await refuse(aSide, send({ room_id: bad }), 'invalid_request', undefined, `malformed room_id ${show(bad)}`);
  }
  {
    const data = { content: 'no room', client_msg_id: cm() };
    await refuse(aSide, data, 'invalid_request', undefined, 'room_id missing on a sidebar socket');
  }
  // Content (over both socket kinds).
  for (const sock of [aSide, aRoom]) {
    const kind = sock === aSide ? 'sidebar' : 'chatroom';
    for (const [bad, label] of [['', 'empty'], ['   \n\t ', 'whitespace only'], ['x'.repeat(MAX_CONTENT + 1), '16,385 bytes'],
      ['é'.repeat(MAX_CONTENT / 2) + 'x', '16,385 bytes of 2-byte characters'], [42, 'a number'], [null, 'null'],
      [['text'], 'an array'], [{ text: 'x' }, 'an object'], [true, 'a boolean']]) {
      await refuse(sock, send({ content: bad }), 'invalid_request', undefined, `${kind}: content ${label}`);
    }
    const data = { room_id: room.id, client_msg_id: cm() };
    await refuse(sock, data, 'invalid_request', undefined, `${kind}: content missing`);
  }
  // client_msg_id: required, 1–64 characters.
  for (const sock of [aSide, aRoom]) {
    const kind = sock === aSide ? 'sidebar' : 'chatroom';
    sock.sendMessage({ room_id: room.id, content: 'no client_msg_id' });
    assertSendError(await sock.next('error'), 'invalid_request', NONE, `${kind}: client_msg_id missing`);
    for (const [bad, label] of [['', 'empty'], ['k'.repeat(65), '65 characters'], [7, 'a number'], [null, 'null'], [['a'], 'an array']]) {
      sock.sendMessage({ room_id: room.id, content: 'bad client_msg_id', client_msg_id: bad });
      assertSendError(await sock.next('error'), 'invalid_request', GIVEN_OR_NONE(bad), `${kind}: client_msg_id ${label}`);
    }
  }
  // The frame itself: data missing or not an object.
  for (const frame of [{ type: 'send_message' }, { type: 'send_message', data: 'text' }, { type: 'send_message', data: [] }]) {
    aSide.send(frame);
    const ev = await aSide.next('error');
    assert.equal(ev.data.code, 'invalid_request', `${show(frame)} → ${show(ev)}`);
  }

  // Nothing was stored, nobody heard anything; every connection is still open.
  assert.equal(await lastSeq(a, room.id), 0, 'nothing stored');
  assert.deepEqual(await history(b, room.id), [], 'history empty');
  await sleep(300);
  for (const [who, x] of [['a sidebar', aSide], ['a chatroom', aRoom], ['b sidebar', bSide], ['b chatroom', bRoom], ['outsider', oSide]]) {
    assert.ok(!x.all.some((e) => e.type === 'new_message'), `${who}: no new_message for a refused send`);
    assert.ok(!x.all.some((e) => e.type === 'ack'), `${who}: no ack for a refused send`);
    assert.equal(x.closeInfo, null, `${who}: still open`);
  }
  const bc = await b.api.get('/api/messages/unread-counts');
  assert.deepEqual(bc.body, { unread_counts: { [room.id]: 0 }, total: 0 }, 'b\'s count unchanged');

  // The boundaries are accepted: 16,384 bytes of content, 64-character and 1-character ids.
  const big = 'é'.repeat(MAX_CONTENT / 2);
  const m1 = assertAck(await aSide.request({ room_id: room.id, content: big, client_msg_id: 'k'.repeat(64) }), 'k'.repeat(64), { seq: 1, content: big }, 'boundaries');
  const m2 = assertAck(await aRoom.request({ content: 'short id', client_msg_id: 'z' }), 'z', { seq: 2, content: 'short id' }, '1-character client_msg_id');
  const evs = await bSide.take('new_message', 2);
  assert.deepEqual(evs.map((e) => e.data.id), [m1.id, m2.id], 'b got the accepted ones');
});

test('rate limit: sends beyond the per-connection burst → error rate_limited with their client_msg_id, one answer each, nothing of them stored', async () => {
  const R = await server(['--ws-inbound-per-sec', '1', '--ws-inbound-burst', '3', ...NO_COOLDOWN]);
  const a = await newUser(R, 'rla');
  const b = await newUser(R, 'rlb');
  const room = await group(a, [b], 'rate');
  const aSide = await sidebar(R, a);
  const bSide = await sidebar(R, b);
  await settle(aSide, bSide);

  const N = 10;
  const cmids = range(0, N - 1).map((i) => `rl-${i}`);
  for (const c of cmids) aSide.sendMessage({ room_id: room.id, content: `burst ${c}`, client_msg_id: c });
  const answers = [];
  for (const c of cmids) answers.push(await aSide.reply(c));
  const acked = [];
  answers.forEach((ev, i) => {
    if (ev.type === 'ack') acked.push(assertAck(ev, cmids[i], { content: `burst ${cmids[i]}` }, `${cmids[i]}`));
    else assertSendError(ev, 'rate_limited', cmids[i], `${cmids[i]} beyond the burst`);
  });
  assert.ok(acked.length >= 3 && acked.length <= 4, `the burst of 3 is accepted (${acked.length} acks: ${show(answers.map((e) => e.type))})`);
  assert.deepEqual(acked.map((m) => m.client_msg_id), cmids.slice(0, acked.length), 'the first ones are accepted');
  assert.deepEqual(acked.map((m) => m.seq), range(1, acked.length), 'seqs of the accepted ones');
  await sleep(300);
  assert.equal(aSide.drain().filter((e) => e.type === 'ack' || e.type === 'error').length, 0, 'exactly one answer per frame');
  assert.deepEqual(await history(a, room.id), acked, 'only the accepted ones are stored');
  const bGot = bSide.drain('new_message');
  assert.deepEqual(bGot.map((e) => e.data.id), acked.map((m) => m.id), 'b got exactly the accepted ones');
  assert.equal(aSide.closeInfo, null, 'still open');

  // The limit is per connection: another socket of the same user sends at once.
  const aSide2 = await sidebar(R, a);
  const k = acked.length;
  assertAck(await aSide2.request({ room_id: room.id, content: 'other tab', client_msg_id: 'rl-other' }), 'rl-other', { seq: k + 1 }, 'another connection');
  // Tokens refill; a refused send retried later is new (it was never stored).
  await sleep(1200);
  const last = cmids.at(-1);
  assertAck(await aSide.request({ room_id: room.id, content: `retry ${last}`, client_msg_id: last }), last,
    { seq: k + 2, content: `retry ${last}` }, 'retry of a refused send after the refill');
  assert.equal(await lastSeq(a, room.id), k + 2);
});

// =====================================================================================
// 4. Multi-device echo and the sender's badge
// =====================================================================================

test('multi-device: the sender\'s other connections get echo:true, the sending one only its ack; a REST send echoes to all; others get no echo flag', async () => {
  const a = await newUser(S, 'mda');
  const b = await newUser(S, 'mdb');
  const room = await group(a, [b], 'devices');
  const other = await group(a, [b], 'elsewhere');
  const aS1 = await sidebar(S, a); const aS2 = await sidebar(S, a);
  const aR = await chatroom(S, a, room.id); const aO = await chatroom(S, a, other.id);
  const bS = await sidebar(S, b); const bR = await chatroom(S, b, room.id);
  const all = [aS1, aS2, aR, aO, bS, bR];
  await settle(...all);

  // 1. Over the first sidebar.
  const m1 = assertAck(await aS1.request({ room_id: room.id, content: 'from tab 1', client_msg_id: 'md-1' }), 'md-1', { seq: 1 });
  assertEchoOf(await aS2.next('new_message'), m1, 'a sidebar 2, send on sidebar 1');
  assertEchoOf(await aR.next('new_message'), m1, 'a chatroom, send on sidebar 1');
  assertPlain(await bS.next('new_message'), m1, 'b sidebar');
  assertPlain(await bR.next('new_message'), m1, 'b chatroom');
  // 2. Over the chatroom socket.
  const m2 = assertAck(await aR.request({ content: 'from the room view', client_msg_id: 'md-2' }), 'md-2', { seq: 2 });
  assertEchoOf(await aS1.next('new_message'), m2, 'a sidebar 1, send on the chatroom socket');
  assertEchoOf(await aS2.next('new_message'), m2, 'a sidebar 2, send on the chatroom socket');
  assertPlain(await bS.next('new_message'), m2, 'b sidebar');
  assertPlain(await bR.next('new_message'), m2, 'b chatroom');
  // 3. Over REST: every connection of the sender is an "other" one.
  const m3 = await restSend(a, room.id, 'from the REST client', { client_msg_id: 'md-3' });
  for (const [who, x] of [['a sidebar 1', aS1], ['a sidebar 2', aS2], ['a chatroom', aR]]) assertEchoOf(await x.next('new_message'), m3, `${who}, REST send`);
  assertPlain(await bS.next('new_message'), m3, 'b sidebar');
  assertPlain(await bR.next('new_message'), m3, 'b chatroom');
  // 4. Retries (WS and REST) send nothing to anyone, echo included.
  assert.deepEqual(assertAck(await aS2.request({ room_id: room.id, content: 'from tab 1', client_msg_id: 'md-1' }), 'md-1'), m1);
  assert.deepEqual(await restSend(a, room.id, 'from the REST client', { client_msg_id: 'md-3' }, 200), m3);

  await sleep(300);
  for (const [who, x] of [['a sidebar 1', aS1], ['a sidebar 2', aS2], ['a chatroom', aR], ['b sidebar', bS], ['b chatroom', bR]]) {
    assert.deepEqual(x.drain('new_message'), [], `${who}: nothing more (no echo or new_message for a retry)`);
  }
  assert.ok(!aS1.all.some((e) => e.type === 'new_message' && e.data.id === m1.id), 'the sending sidebar got no new_message for its own send');
  assert.ok(!aR.all.some((e) => e.type === 'new_message' && e.data.id === m2.id), 'the sending chatroom socket got no new_message for its own send');
  assert.ok(!aO.all.some((e) => e.type === 'new_message'), 'a chatroom socket of another room gets nothing of this room');
  // Every frame on every socket arrived in seq order, at most once.
  for (const [who, x] of [['a sidebar 1', aS1], ['a sidebar 2', aS2], ['a chatroom', aR], ['b sidebar', bS]]) {
    const seqs = x.all.filter((e) => e.type === 'new_message').map((e) => e.data.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${who}: seqs ${seqs}`);
  }

  // The sender's badge: 0 over REST and on every connection; b has 3 unread.
  for (const [who, x] of [['a sidebar 1', aS1], ['a sidebar 2', aS2], ['a chatroom', aR]]) {
    for (const e of x.all.filter((f) => f.type === 'unread_count_update' && f.data.room_id === room.id)) {
      assert.equal(e.data.unread_count, 0, `${who}: an echo never raises the sender's badge: ${show(e)}`);
      assert.equal(e.data.total_unread, 0, `${who}: total: ${show(e)}`);
    }
  }
  const ac = await a.api.get('/api/messages/unread-counts');
  assert.deepEqual(ac.body, { unread_counts: { [room.id]: 0, [other.id]: 0 }, total: 0 }, 'the sender\'s unread counts');
  const ar = await a.api.get(`/api/chatrooms/${room.id}`);
  assert.equal(ar.body.unread_count, 0, 'the sender\'s room unread_count');
  const bc = await b.api.get('/api/messages/unread-counts');
  assert.deepEqual(bc.body, { unread_counts: { [room.id]: 3, [other.id]: 0 }, total: 3 }, 'b\'s unread counts');
  const bLast = bS.all.filter((e) => e.type === 'unread_count_update').at(-1);
  assert.deepEqual(bLast?.data, { room_id: room.id, unread_count: 3, total_unread: 3, last_seq: 3 }, 'b\'s newest badge');
});

test('multi-device: a WS send that clears the sender\'s unread → unread_count_update 0 on every connection of the sender, echo on the others', async () => {
  const a = await newUser(S, 'cla');
  const b = await newUser(S, 'clb');
  const room = await group(a, [b], 'catch up');
  await restSend(b, room.id, 'one');
  await restSend(b, room.id, 'two');
  const aS1 = await sidebar(S, a); const aS2 = await sidebar(S, a);
  await sleep(150);
  for (const x of [aS1, aS2]) {
    assert.deepEqual(x.all[1]?.data, { room_id: room.id, unread_count: 2, total_unread: 2, last_seq: 2 }, 'snapshot: 2 unread');
    x.drain();
  }
  const m = assertAck(await aS1.request({ room_id: room.id, content: 'reply', client_msg_id: 'cl-1' }), 'cl-1', { seq: 3 });
  for (const [who, x] of [['sending sidebar', aS1], ['other sidebar', aS2]]) {
    const u = await x.next('unread_count_update');
    assert.deepEqual(u.data, { room_id: room.id, unread_count: 0, total_unread: 0, last_seq: 3 }, `${who}: the send moved the watermark`);
  }
  assertEchoOf(await aS2.next('new_message'), m, 'other sidebar');
  await sleep(200);
  assert.deepEqual(aS1.drain('new_message'), [], 'the sending sidebar gets no new_message');
  assert.deepEqual(aS2.drain('new_message'), [], 'the other sidebar gets one echo');
  const rest = await a.api.get('/api/messages/unread-counts');
  assert.deepEqual(rest.body, { unread_counts: { [room.id]: 0 }, total: 0 }, 'REST agrees');
});

test('multi-device under concurrency: echoes and others\' messages arrive on each connection once, in one gap-free seq order', async () => {
  const a = await newUser(S, 'mca');
  const b = await newUser(S, 'mcb');
  const room = await group(a, [b], 'busy');
  const aS1 = await sidebar(S, a); const aS2 = await sidebar(S, a); const aR = await chatroom(S, a, room.id);
  const bS = await sidebar(S, b);
  await settle(aS1, aS2, aR, bS);
  const N = 25;
  const aSent = new Map(); // seq → how a sent it
  const bSent = new Set();
  await Promise.all([
    (async () => { // a over sidebar 1, pipelined
      const cms = range(1, N).map((i) => `mc-s-${i}`);
      for (const c of cms) aS1.sendMessage({ room_id: room.id, content: c, client_msg_id: c });
      for (const c of cms) aSent.set(assertAck(await aS1.reply(c), c).seq, 'sidebar 1');
    })(),
    (async () => { // a over its chatroom socket, pipelined
      const cms = range(1, N).map((i) => `mc-r-${i}`);
      for (const c of cms) aR.sendMessage({ content: c, client_msg_id: c });
      for (const c of cms) aSent.set(assertAck(await aR.reply(c), c).seq, 'chatroom');
    })(),
    (async () => { for (let i = 0; i < N; i++) aSent.set((await restSend(a, room.id, `a rest ${i}`)).seq, 'rest'); })(),
    (async () => { for (let i = 0; i < N; i++) bSent.add((await restSend(b, room.id, `b rest ${i}`)).seq); })(),
  ]);
  const total = 4 * N;
  assert.deepEqual([...aSent.keys(), ...bSent].sort((x, y) => x - y), range(1, total), 'one gap-free seq order');
  const expectOn = (via) => range(1, total).filter((q) => aSent.get(q) !== via);
  for (const [who, x, via] of [['a sidebar 1', aS1, 'sidebar 1'], ['a sidebar 2', aS2, null], ['a chatroom', aR, 'chatroom'], ['b sidebar', bS, 'b']]) {
    // b sends over REST only: every connection of b gets its own messages too, as echoes.
    const exp = via === 'b' ? range(1, total) : expectOn(via);
    const evs = await x.take('new_message', exp.length, 15000);
    assert.deepEqual(evs.map((e) => e.data.seq), exp, `${who}: exactly the expected messages, in seq order`);
    for (const e of evs) {
      const own = via === 'b' ? bSent.has(e.data.seq) : aSent.has(e.data.seq);
      assert.equal(e.data.echo === true, own, `${who}: seq ${e.data.seq} echo flag ${show(e.data.echo)} (own message: ${own})`);
    }
  }
  await sleep(300);
  for (const x of [aS1, aS2, aR, bS]) assert.deepEqual(x.drain('new_message'), [], 'no duplicate');
  // a's watermark is at its newest send: only b's messages above it are unread for a, and
  // a's newest badge on every connection says so.
  const newestOwn = Math.max(...aSent.keys());
  const aUnread = [...bSent].filter((q) => q > newestOwn).length;
  const ac = await a.api.get('/api/messages/unread-counts');
  assert.equal(ac.body.unread_counts[room.id], aUnread, `a's unread count (newest own send #${newestOwn})`);
  for (const [who, x] of [['a sidebar 1', aS1], ['a sidebar 2', aS2], ['a chatroom', aR]]) {
    const ups = x.all.filter((e) => e.type === 'unread_count_update' && e.data.room_id === room.id);
    for (let i = 1; i < ups.length; i++) assert.ok(ups[i].data.last_seq >= ups[i - 1].data.last_seq, `${who}: badge last_seq never goes back`);
    const newest = ups.reduce((k, e) => (!k || e.data.last_seq > k.data.last_seq ||
      (e.data.last_seq === k.data.last_seq && e.data.unread_count < k.data.unread_count) ? e : k), null);
    if (newest) assert.equal(newest.data.unread_count, aUnread, `${who}: newest badge ${show(newest.data)}`);
    else assert.equal(aUnread, 0, `${who}: no badge update at all, yet ${aUnread} unread`);
  }
});
