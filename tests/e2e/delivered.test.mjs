// Delivered (grey double ticks) against a real `parley serve` (../../../shared/CONTRACT.md
// "Beyond the seed" → "Delivered", docs/asyncapi.yaml, docs/decisions.md "Delivered"):
//   - client → `delivered` {"room_id","up_to_seq"} (the sidebar: any room of the user; a
//     chatroom socket: its own room, room_id may be left out);
//   - a per-(room, user) watermark, monotonic, clamped to the room's last_seq;
//   - every member's connections (the deliverer's own included) get `message_delivered`
//     {"room_id","user_id","up_to_seq","delivered_at"} each time it moves, and only then;
//   - a read implies delivered: a read that moves it sends `message_delivered` too;
//   - a non-member or bad input gets `error` with a code, and nobody hears anything;
//   - `GET /api/messages/:id/read-by-who` lists `delivered_to` (the sender excluded).
// "Nothing was sent" is checked with a fence, not a timer: after the call that must send
// nothing, the same connection makes a real move, and the next `message_delivered` each
// receiver gets must be that one (one connection's frames are handled in order).
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/delivered.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { TIME_RE, assertStatus, createGroupOk as group, sendOk as send } from './lib/rest-helpers.mjs';
import { open, where, settle } from './lib/ws-client.mjs';

const UNKNOWN_ID = '987654321987654321';
const { server, track } = useSuite();
let S;
before(async () => { S = await server(NO_COOLDOWN); });

// ---- helpers ----
const keys = (o) => Object.keys(o).sort();
const show = (x) => JSON.stringify(x)?.slice(0, 400);

const sidebar = async (u) => track(await open(S.url, `/ws?token=${u.token}`));
const chatroom = async (u, roomId) => track(await open(S.url, `/api/ws?token=${u.token}&room_id=${roomId}`));
const isDelivered = where('message_delivered', (e) => e.type === 'message_delivered');

function assertDelivered(ev, expected, what) {
  assert.equal(ev.type, 'message_delivered', `${what}: ${show(ev)}`);
  assert.deepEqual(keys(ev.data), ['delivered_at', 'room_id', 'up_to_seq', 'user_id'], `${what}: fields ${show(ev.data)}`);
  assert.match(ev.data.delivered_at, TIME_RE, `${what}: delivered_at`);
  const { delivered_at: _at, ...rest } = ev.data;
  assert.deepEqual(rest, expected, `${what}: ${show(ev.data)}`);
  return ev.data;
}
function assertError(ev, code, what) {
  assert.equal(ev.type, 'error', `${what}: expected error ${code}, got ${show(ev)}`);
  assert.equal(ev.data.code, code, `${what}: code (${show(ev.data)})`);
  assert.equal(typeof ev.data.message, 'string', `${what}: message`);
  assert.ok(ev.data.message.length > 0, `${what}: message non-empty`);
}
const delivered = (x, data) => x.send({ type: 'delivered', data });

// Returns once every frame x sent before has been handled: a connection handles its frames
// one at a time, in order, so the heartbeat is answered after them.
async function roundTrip(x) {
  x.send({ type: 'heartbeat', data: { timestamp: 2 } });
  await x.next('heartbeat_ack');
}

// Every receiver's next message_delivered is `expected` (and the same event for all of them).
async function everyoneGets(receivers, expected, what) {
  let first = null;
  for (const [who, x] of receivers) {
    const d = assertDelivered(await x.next(isDelivered), expected, `${what}: ${who}`);
    if (first) assert.deepEqual(d, first, `${what}: ${who} got the same event`);
    first = d;
  }
  return first;
}

async function readByWho(u, messageId) {
  const r = await u.api.get(`/api/messages/${messageId}/read-by-who`);
  assertStatus(r, 200, 'read-by-who');
  return r.body;
}
function assertDeliveredTo(body, expected, what) {
  assert.ok(Array.isArray(body.delivered_to), `${what}: delivered_to ${show(body)}`);
  for (const e of body.delivered_to) {
    assert.deepEqual(keys(e), ['delivered_at', 'user_id', 'username'], `${what}: entry ${show(e)}`);
    assert.match(e.delivered_at, TIME_RE, `${what}: delivered_at`);
  }
  const got = Object.fromEntries(body.delivered_to.map((e) => [e.user_id, e]));
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), `${what}: who ${show(body.delivered_to)}`);
  for (const [id, { username, delivered_at }] of Object.entries(expected)) {
    assert.equal(got[id].username, username, `${what}: username of ${id}`);
    if (delivered_at) assert.equal(got[id].delivered_at, delivered_at, `${what}: delivered_at of ${username}`);
  }
}

// =====================================================================================

test('delivered on a sidebar → message_delivered to every member\'s connections (the deliverer\'s own included), once per move; nothing to others', async () => {
  const a = await newUser(S, 'dla');
  const b = await newUser(S, 'dlb');
  const c = await newUser(S, 'dlc');
  const d = await newUser(S, 'dld'); // not a member
  const room = await group(a, [b, c], 'ticks');
  const other = await group(b, [d], 'other'); // b and d only
  const m1 = await send(a, room.id, 'm1');
  await send(a, room.id, 'm2');
  await send(a, room.id, 'm3');
  const aSide = await sidebar(a); const aRoom = await chatroom(a, room.id);
  const bSide = await sidebar(b); const bRoom = await chatroom(b, room.id); const bOther = await chatroom(b, other.id);
  const cSide = await sidebar(c);
  const dSide = await sidebar(d);
  await settle(aSide, aRoom, bSide, bRoom, bOther, cSide, dSide);
  const members = [['a sidebar', aSide], ['a chatroom', aRoom], ['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]];

  delivered(bSide, { room_id: room.id, up_to_seq: 1 });
  const first = await everyoneGets(members, { room_id: room.id, user_id: b.user.id, up_to_seq: 1 }, 'b up to 1');

  // No move (the same, lower, zero): nothing. The fence: b's next real move is what everyone gets next.
  delivered(bSide, { room_id: room.id, up_to_seq: 1 });
  delivered(bSide, { room_id: room.id, up_to_seq: 0 });
  delivered(bRoom, { up_to_seq: 1 }); // b's chatroom socket: its own room
  delivered(bSide, { room_id: room.id, up_to_seq: 2 });
  const second = await everyoneGets(members, { room_id: room.id, user_id: b.user.id, up_to_seq: 2 }, 'b up to 2');
  assert.ok(second.delivered_at >= first.delivered_at, 'delivered_at does not go back');

  // Above last_seq: clamped to it (3), from the chatroom socket without room_id.
  delivered(bRoom, { up_to_seq: 1000000 });
  await everyoneGets(members, { room_id: room.id, user_id: b.user.id, up_to_seq: 3 }, 'b clamped to last_seq');
  // At last_seq already: a higher value moves nothing; the fence is a new message and c's delivery of it.
  delivered(bSide, { room_id: room.id, up_to_seq: 1000001 });
  await roundTrip(bSide); // handled before m4 exists
  await send(a, room.id, 'm4');
  delivered(cSide, { room_id: room.id, up_to_seq: 4 });
  await everyoneGets(members, { room_id: room.id, user_id: c.user.id, up_to_seq: 4 }, 'c up to 4');

  // Neither b's other room nor a non-member heard anything of the room (their fence: a move in `other`).
  delivered(dSide, { room_id: other.id, up_to_seq: 0 }); // no messages there: nothing moves
  await roundTrip(dSide);
  await send(b, other.id, 'o1');
  delivered(dSide, { room_id: other.id, up_to_seq: 1 });
  await everyoneGets([['b other chatroom', bOther], ['d sidebar', dSide], ['b sidebar', bSide]],
    { room_id: other.id, user_id: d.user.id, up_to_seq: 1 }, 'd in other');
  assert.ok(!dSide.all.some((e) => e.data?.room_id === room.id), 'd never hears of the room');
  assert.ok(!bOther.all.some((e) => e.type === 'message_delivered' && e.data.room_id === room.id), 'a chatroom socket hears its own room only');
  assert.ok(!aSide.all.some((e) => e.data?.room_id === other.id), 'a never hears of b and d\'s room');
  for (const [, x] of members) assert.equal(x.drain(isDelivered).length, 0, 'nothing more was delivered');
  void m1;
});

test('a non-member\'s delivered → error forbidden, nobody hears; bad input → error with a code, the socket stays open', async () => {
  const a = await newUser(S, 'dna');
  const b = await newUser(S, 'dnb');
  const e = await newUser(S, 'dne'); // not a member
  const room = await group(a, [b], 'closed');
  const mine = await group(e, [], 'mine');
  await send(a, room.id, 'm1');
  const aSide = await sidebar(a);
  const bSide = await sidebar(b);
  const eSide = await sidebar(e);
  const bRoom = await chatroom(b, room.id);
  await settle(aSide, bSide, eSide, bRoom);

  delivered(eSide, { room_id: room.id, up_to_seq: 1 });
  assertError(await eSide.next('error'), 'forbidden', 'non-member');
  const bad = [
    [{ room_id: room.id }, 'invalid_request', 'missing up_to_seq'],
    [{ room_id: room.id, up_to_seq: -1 }, 'invalid_request', 'negative up_to_seq'],
    [{ room_id: room.id, up_to_seq: 1.5 }, 'invalid_request', 'non-integer up_to_seq'],
    [{ room_id: room.id, up_to_seq: '1' }, 'invalid_request', 'up_to_seq as a string'],
    [{ room_id: room.id, up_to_seq: null }, 'invalid_request', 'null up_to_seq'],
    [{ up_to_seq: 1 }, 'invalid_request', 'no room_id on the sidebar'],
    [{ room_id: 'x1', up_to_seq: 1 }, 'invalid_request', 'malformed room_id'],
    [{ room_id: Number(room.id), up_to_seq: 1 }, 'invalid_request', 'room_id as a number'],
    [{ room_id: UNKNOWN_ID, up_to_seq: 1 }, 'not_found', 'unknown room'],
  ];
  for (const [data, code, what] of bad) {
    delivered(bSide, data);
    assertError(await bSide.next('error'), code, `sidebar: ${what}`);
  }
  bSide.send({ type: 'delivered' }); // no data at all
  assertError(await bSide.next('error'), 'invalid_request', 'no data');
  delivered(bRoom, { room_id: mine.id, up_to_seq: 1 }); // a chatroom socket, another room
  assertError(await bRoom.next('error'), 'invalid_request', 'chatroom socket, another room');

  // Nobody heard anything: b's next real move is the first message_delivered anyone got.
  delivered(bSide, { room_id: room.id, up_to_seq: 1 });
  await everyoneGets([['a sidebar', aSide], ['b sidebar', bSide], ['b chatroom', bRoom]],
    { room_id: room.id, user_id: b.user.id, up_to_seq: 1 }, 'after the refusals');
  // The refusals stored nothing: the one accepted move is all read-by-who shows.
  for (const x of [aSide, bSide, eSide, bRoom]) assert.equal(x.closeInfo, null, 'the socket stays open');
  assert.ok(!eSide.all.some((x) => x.type === 'message_delivered'), 'the non-member hears nothing');
});

test('a read implies delivered: a read past the delivered watermark sends message_delivered (before message_read); one below it does not', async () => {
  const a = await newUser(S, 'dra');
  const b = await newUser(S, 'drb');
  const c = await newUser(S, 'drc');
  const room = await group(a, [b, c], 'reads');
  const m1 = await send(a, room.id, 'm1');
  const m2 = await send(a, room.id, 'm2');
  const aSide = await sidebar(a);
  const bSide = await sidebar(b);
  const cSide = await sidebar(c);
  await settle(aSide, bSide, cSide);
  const all = [['a', aSide], ['b', bSide], ['c', cSide]];

  // b reads m1 (delivered at 0): delivered moves to 1 with the read.
  assertStatus(await b.api.post(`/api/messages/${m1.id}/read`), 200, 'b reads m1');
  for (const [who, x] of all) {
    const ev = await x.next((e) => e.type === 'message_delivered' || e.type === 'message_read');
    assertDelivered(ev, { room_id: room.id, user_id: b.user.id, up_to_seq: 1 }, `${who}: grey before blue`);
    const read = await x.next('message_read');
    assert.equal(read.data.up_to_seq, 1);
    assert.equal(read.data.read_at, ev.data.delivered_at, `${who}: delivered when read`);
  }
  // c marks delivered up to 2, then reads 1 and 2: the read moves only the read watermark.
  delivered(cSide, { room_id: room.id, up_to_seq: 2 });
  await everyoneGets(all, { room_id: room.id, user_id: c.user.id, up_to_seq: 2 }, 'c delivered 2');
  assertStatus(await c.api.post(`/api/chatrooms/${room.id}/mark-all-read`), 200, 'c reads all');
  for (const [, x] of all) await x.next('message_read');
  // b delivered up to 1 now moves nothing (its read put it there); the fence: b up to 2.
  delivered(bSide, { room_id: room.id, up_to_seq: 1 });
  delivered(bSide, { room_id: room.id, up_to_seq: 2 });
  await everyoneGets(all, { room_id: room.id, user_id: b.user.id, up_to_seq: 2 }, 'b delivered 2 (c\'s read sent none)');

  // read-by-who: delivered_to lists b and c (not the sender), read_by holds the readers.
  const w1 = await readByWho(a, m1.id);
  assertDeliveredTo(w1, { [b.user.id]: { username: b.user.username }, [c.user.id]: { username: c.user.username } }, 'm1');
  assert.deepEqual(w1.read_by.map((r) => r.user_id).sort(), [b.user.id, c.user.id].sort(), 'm1 read_by');
  const w2 = await readByWho(b, m2.id);
  assertDeliveredTo(w2, { [b.user.id]: { username: b.user.username }, [c.user.id]: { username: c.user.username } }, 'm2');
  assert.deepEqual(w2.read_by.map((r) => r.user_id), [c.user.id], 'm2 read_by: c only');
  assert.equal(w2.delivered_to.length, w2.member_count, 'm2: delivered to everyone (grey double tick)');
  assert.ok(w2.read_count < w2.member_count, 'm2: not read by everyone yet');
});

test('read-by-who delivered_to: the sender excluded, each recipient with the time its watermark first passed the message', async () => {
  const a = await newUser(S, 'dwa');
  const b = await newUser(S, 'dwb');
  const c = await newUser(S, 'dwc');
  const room = await group(a, [b, c], 'who');
  const m1 = await send(a, room.id, 'm1');
  const m2 = await send(b, room.id, 'm2'); // b's send moves b's watermarks past m1 (no frame)
  const aSide = await sidebar(a);
  const cSide = await sidebar(c);
  await settle(aSide, cSide);

  let w = await readByWho(a, m1.id);
  assertDeliveredTo(w, { [b.user.id]: { username: b.user.username } }, 'm1 before c');
  assert.equal(w.member_count, 2);
  w = await readByWho(a, m2.id);
  assertDeliveredTo(w, {}, 'm2 before anyone: stored only (one tick)');

  delivered(cSide, { room_id: room.id, up_to_seq: 1 });
  const at1 = (await aSide.next(isDelivered)).data.delivered_at;
  delivered(cSide, { room_id: room.id, up_to_seq: 2 });
  const at2 = (await aSide.next(isDelivered)).data.delivered_at;
  w = await readByWho(a, m1.id);
  assertDeliveredTo(w, { [b.user.id]: { username: b.user.username }, [c.user.id]: { username: c.user.username, delivered_at: at1 } }, 'm1 after c');
  w = await readByWho(c, m2.id); // b sent m2: b is not in it
  // a's watermarks are at 1 (a's own send): m2 has not reached a.
  assertDeliveredTo(w, { [c.user.id]: { username: c.user.username, delivered_at: at2 } }, 'm2 after c');
  assert.equal(w.member_count, 2);
  // A later read keeps the earlier delivered time.
  assertStatus(await c.api.post(`/api/messages/${m2.id}/read`), 200, 'c reads m2');
  w = await readByWho(a, m1.id);
  assertDeliveredTo(w, { [b.user.id]: { username: b.user.username }, [c.user.id]: { username: c.user.username, delivered_at: at1 } }, 'm1 after c read');
  // Non-members and unknown messages as for the rest of read-by-who.
  const x = await newUser(S, 'dwx');
  assert.equal((await x.api.get(`/api/messages/${m1.id}/read-by-who`)).status, 403);
  assert.equal((await a.api.get(`/api/messages/${UNKNOWN_ID}/read-by-who`)).status, 404);
});

test('GET /api/chatrooms/:id shows every member\'s read and delivered watermarks (ticks at once)', async () => {
  const [a, b, c] = [await newUser(S, 'wma'), await newUser(S, 'wmb'), await newUser(S, 'wmc')];
  const room = await group(a, [b, c], 'watermarks');
  await send(a, room.id, 'one');
  const two = await send(a, room.id, 'two');
  const sb = await chatroom(b, room.id);
  await settle(sb);
  sb.send({ type: 'delivered', data: { up_to_seq: 2 } });
  await sb.next(isDelivered);
  assertStatus(await c.api.post(`/api/messages/${two.id}/read`), 200, 'c reads two');
  const marks = async () => {
    const r = await a.api.get(`/api/chatrooms/${room.id}`);
    assertStatus(r, 200, 'get room');
    return Object.fromEntries(r.body.watermarks.map((w) => [w.user_id, [w.read_seq, w.delivered_seq]]));
  };
  // a sent both (its watermark moved with each send); b has them delivered; c has read (a read
  // implies delivered); members' list and watermarks' list agree.
  assert.deepEqual(await marks(), { [a.user.id]: [2, 2], [b.user.id]: [0, 2], [c.user.id]: [2, 2] });
  // A non-member sees nothing of them.
  const d = await newUser(S, 'wmd');
  const r = await d.api.get(`/api/chatrooms/${room.id}`);
  assert.equal(r.status, 403);
  assert.equal(r.body.watermarks, undefined);
  // A member who leaves is no longer listed.
  assertStatus(await c.api.del(`/api/chatrooms/${room.id}/members/${c.user.id}`), 204, 'c leaves');
  assert.deepEqual(Object.keys(await marks()).sort(), [a.user.id, b.user.id].sort());
});
