// Reactions against a real `parley serve` (../../../shared/CONTRACT.md "Beyond the seed" →
// "Reactions", docs/openapi.yaml, docs/asyncapi.yaml, docs/decisions.md "Reactions"):
//   - `PUT` / `DELETE /api/messages/:id/reactions/:emoji`, idempotent, 200 with the message's
//     `reactions` map; the emoji percent-encoded in the path, one grapheme cluster ≤ 32 bytes;
//   - every member's connections (sidebar and the room's chatroom sockets, the reactor's own
//     included) get `reaction` {"message_id","room_id","user_id","emoji","action"} for each
//     change, and nothing for a call that changes nothing; a non-member hears nothing;
//   - message objects carry `reactions` {"<emoji>":["<user_id>"…]}: history, GET message,
//     new_message (an empty map), the WebSocket ack, resume replays (after_seq);
//   - refusals: 400 invalid_emoji (each rule), 401, 403 (non-member, removed member), 404, and
//     409 too_many_reactions past 64 distinct emoji on one message.
// "Nothing was sent" is checked with a fence: after the call that must send nothing, the same
// user makes a real change, and the next `reaction` each receiver gets must be that one.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/reactions.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { assertStatus, assertError, raw, createGroupOk as group, sendOk as send } from './lib/rest-helpers.mjs';
import { open, where, settle } from './lib/ws-client.mjs';

const UNKNOWN_ID = '987654321987654321';
const { server, track } = useSuite();
let S;
before(async () => { S = await server(NO_COOLDOWN); });

const UP = '👍';
const HEART = '❤️'; // with VS16
const TONE = '👍🏽';
const FAMILY = '👨‍👩‍👧';
const FLAG = '🇫🇷';
const enc = encodeURIComponent;
const show = (x) => JSON.stringify(x)?.slice(0, 400);

const put = (u, id, emoji) => u.api.put(`/api/messages/${id}/reactions/${enc(emoji)}`);
const del = (u, id, emoji) => u.api.del(`/api/messages/${id}/reactions/${enc(emoji)}`);
async function react(u, id, emoji, add = true) {
  const r = await (add ? put : del)(u, id, emoji);
  assertStatus(r, 200, `${add ? 'PUT' : 'DELETE'} ${emoji} on ${id}`);
  assert.deepEqual(Object.keys(r.body).sort(), ['message_id', 'reactions'], `body ${show(r.body)}`);
  assert.equal(r.body.message_id, id);
  return r.body.reactions;
}
const sidebar = async (u) => track(await open(S.url, `/ws?token=${u.token}`));
const chatroom = async (u, roomId, afterSeq) => track(await open(S.url,
  `/api/ws?token=${u.token}&room_id=${roomId}${afterSeq === undefined ? '' : `&after_seq=${afterSeq}`}`));
const isReaction = where('reaction', (e) => e.type === 'reaction');
async function everyoneGets(receivers, expected, what) {
  for (const [who, x] of receivers) {
    const ev = await x.next(isReaction);
    assert.deepEqual(ev.data, expected, `${what}: ${who} got ${show(ev.data)}`);
  }
}
const historyOf = async (u, roomId) => {
  const r = await u.api.get(`/api/chatrooms/${roomId}/messages`);
  assertStatus(r, 200, 'history');
  return r.body.messages;
};

// =====================================================================================

test('PUT/DELETE are idempotent, answer the reactions map, and each change (only) reaches every member\'s sidebar and chatroom sockets', async () => {
  const a = await newUser(S, 'rxa');
  const b = await newUser(S, 'rxb');
  const c = await newUser(S, 'rxc');
  const d = await newUser(S, 'rxd'); // not a member
  const room = await group(a, [b, c], 'reacts');
  const other = await group(d, [b], 'other');
  const m = await send(a, room.id, 'react to me');
  const aSide = await sidebar(a); const aRoom = await chatroom(a, room.id);
  const bSide = await sidebar(b); const bRoom = await chatroom(b, room.id); const bOther = await chatroom(b, other.id);
  const cSide = await sidebar(c);
  const dSide = await sidebar(d);
  await settle(aSide, aRoom, bSide, bRoom, bOther, cSide, dSide);
  const members = [['a sidebar', aSide], ['a chatroom', aRoom], ['b sidebar', bSide], ['b chatroom', bRoom], ['c sidebar', cSide]];
  const ev = (user, emoji, action) => ({ message_id: m.id, room_id: room.id, user_id: user.user.id, emoji, action });

  assert.deepEqual(await react(b, m.id, UP), { [UP]: [b.user.id] });
  await everyoneGets(members, ev(b, UP, 'add'), 'b adds 👍');
  // The same PUT again: 200, the same map, no event. Fence: c's add is the next event.
  assert.deepEqual(await react(b, m.id, UP), { [UP]: [b.user.id] });
  assert.deepEqual(await react(c, m.id, UP), { [UP]: [b.user.id, c.user.id] });
  await everyoneGets(members, ev(c, UP, 'add'), 'c adds 👍 (the repeated PUT sent nothing)');
  for (const e of [HEART, TONE, FAMILY, FLAG]) {
    await react(a, m.id, e);
    await everyoneGets(members, ev(a, e, 'add'), `a adds ${e}`);
  }
  // DELETE: idempotent too; deleting one never added sends nothing either.
  assert.deepEqual(await react(b, m.id, UP, false), { [UP]: [c.user.id], [HEART]: [a.user.id], [TONE]: [a.user.id], [FAMILY]: [a.user.id], [FLAG]: [a.user.id] });
  await everyoneGets(members, ev(b, UP, 'remove'), 'b removes 👍');
  await react(b, m.id, UP, false);
  await react(b, m.id, HEART, false); // b never reacted with ❤️
  await react(c, m.id, UP, false); // the last 👍: the emoji goes away
  await everyoneGets(members, ev(c, UP, 'remove'), 'c removes 👍 (the no-op DELETEs sent nothing)');
  const final = { [HEART]: [a.user.id], [TONE]: [a.user.id], [FAMILY]: [a.user.id], [FLAG]: [a.user.id] };
  // Nobody outside the room heard anything; b's socket of the other room neither.
  assert.ok(!dSide.all.some((e) => e.type === 'reaction'), `d heard nothing: ${show(dSide.all)}`);
  assert.ok(!bOther.all.some((e) => e.type === 'reaction'), 'a chatroom socket of another room hears nothing');
  for (const [who, x] of members) assert.equal(x.drain(isReaction).length, 0, `${who}: nothing more`);
  // The stored state, on every read of the message.
  const hist = await historyOf(c, room.id);
  assert.deepEqual(hist[0].reactions, final, 'history');
  const one = await c.api.get(`/api/messages/${m.id}`);
  assertStatus(one, 200, 'GET message');
  assert.deepEqual(one.body.reactions, final, 'GET message');
  const rooms = await b.api.get('/api/chatrooms');
  assert.deepEqual(rooms.body.chatrooms.find((r) => r.id === room.id).last_message.reactions, final, 'a room\'s last_message');
});

test('message objects carry reactions: empty in new_message and a fresh ack; stored ones in an idempotent retry\'s ack and in resume replays', async () => {
  const a = await newUser(S, 'rma');
  const b = await newUser(S, 'rmb');
  const room = await group(a, [b], 'objects');
  const bRoom = await chatroom(b, room.id);
  const aSide = await sidebar(a);
  await settle(bRoom, aSide);
  const m1 = await send(a, room.id, 'one');
  assert.deepEqual(m1.reactions, {}, 'the POST answer');
  const live = await bRoom.next('new_message');
  assert.deepEqual(live.data.reactions, {}, 'new_message: an empty map');
  aSide.send({ type: 'send_message', data: { room_id: room.id, content: 'two', client_msg_id: 'rm-1' } });
  const ack = await aSide.next('ack');
  assert.deepEqual(ack.data.message.reactions, {}, 'a fresh ack');
  const m2 = ack.data.message;
  await react(b, m2.id, UP);
  await react(a, m1.id, HEART);
  await react(b, m1.id, HEART);
  // The retry of a stored send: its ack is the original, with its reactions now.
  aSide.send({ type: 'send_message', data: { room_id: room.id, content: 'two', client_msg_id: 'rm-1' } });
  const again = await aSide.next('ack');
  assert.equal(again.data.message.id, m2.id);
  assert.deepEqual(again.data.message.reactions, { [UP]: [b.user.id] }, 'a retry\'s ack');
  // Resume: after_seq=0 replays both messages, each with its reactions.
  const resumed = await chatroom(b, room.id, 0);
  const replay = await resumed.take('new_message', 2);
  assert.deepEqual(replay.map((e) => e.data.seq), [1, 2]);
  assert.deepEqual(replay[0].data.reactions, { [HEART]: [a.user.id, b.user.id] }, 'replay of m1 (users in the order they reacted)');
  assert.deepEqual(replay[1].data.reactions, { [UP]: [b.user.id] }, 'replay of m2');
  const page = await historyOf(b, room.id);
  assert.deepEqual(page.map((m) => m.reactions), [replay[0].data.reactions, replay[1].data.reactions], 'history agrees');
  const after1 = await b.api.get(`/api/chatrooms/${room.id}/messages?after_seq=1`);
  assert.deepEqual(after1.body.messages.map((m) => m.reactions), [{ [UP]: [b.user.id] }], 'history after_seq');
});

test('emoji validation: each refusal is 400 invalid_emoji (invalid_request for a malformed path), nothing stored, nobody told', async () => {
  const a = await newUser(S, 'rva');
  const b = await newUser(S, 'rvb');
  const room = await group(a, [b], 'valid');
  const m = await send(a, room.id, 'x');
  const bSide = await sidebar(b);
  await settle(bSide);
  const bad = [
    ['👍👍', 'two clusters'],
    ['ab', 'two letters'],
    ['a'.repeat(33), '33 bytes'],
    ['👨‍👩‍👧‍👦‍👦️', 'one cluster of 35 bytes'],
    ['\u0301', 'a lone combining mark'],
    ['\u200d', 'a lone ZWJ'],
    ['\ufe0f', 'a lone variation selector'],
    [' ', 'a space'],
    ['\t', 'a tab'],
    ['\u00a0', 'a no-break space'],
    ['\u0007', 'a control character'],
  ];
  for (const [emoji, what] of bad) {
    assertError(await put(b, m.id, emoji), 400, 'invalid_emoji', what);
    assertError(await del(b, m.id, emoji), 400, 'invalid_emoji', `DELETE: ${what}`);
  }
  const rawBad = [
    ['%FF', 'invalid UTF-8'],
    ['%C3', 'a truncated sequence'],
    ['%ED%A0%80', 'a surrogate'],
    ['', 'empty'],
  ];
  for (const [path, what] of rawBad) assertError(await b.api.put(`/api/messages/${m.id}/reactions/${path}`), 400, 'invalid_emoji', what);
  assertError(await b.api.put(`/api/messages/${m.id}/reactions/%`), 400, 'invalid_request', 'a lone %');
  assertError(await b.api.put(`/api/messages/${m.id}/reactions/%G1`), 400, 'invalid_request', 'a bad escape');
  // One cluster of exactly 32 bytes passes (👨‍👩‍👧‍👦‍👦).
  const big = '👨‍👩‍👧‍👦‍👦';
  assert.equal(Buffer.byteLength(big), 32);
  assert.deepEqual(await react(b, m.id, big), { [big]: [b.user.id] });
  await bSide.next(isReaction); // the fence: the accepted one is the first event b got
  assert.equal(bSide.drain(isReaction).length, 0, 'no event for a refused call');
  assert.deepEqual((await historyOf(a, room.id))[0].reactions, { [big]: [b.user.id] }, 'only the accepted one is stored');
});

test('authorization: 401 without a token, 403 for a non-member and a removed member (nothing told), 404 for an unknown message, 400 for a malformed id', async () => {
  const a = await newUser(S, 'raa');
  const b = await newUser(S, 'rab');
  const e = await newUser(S, 'rae'); // never a member
  const room = await group(a, [b], 'auth');
  const m = await send(a, room.id, 'x');
  const aSide = await sidebar(a);
  const eSide = await sidebar(e);
  await settle(aSide, eSide);
  const path = `/api/messages/${m.id}/reactions/${enc(UP)}`;
  assertError(await raw(S.url, 'PUT', path), 401, 'unauthorized', 'no token');
  assertError(await raw(S.url, 'DELETE', path), 401, 'unauthorized', 'no token DELETE');
  assertError(await raw(S.url, 'PUT', path, { token: 'x.y.z' }), 401, 'unauthorized', 'a bad token');
  assertError(await put(e, m.id, UP), 403, 'forbidden', 'non-member PUT');
  assertError(await del(e, m.id, UP), 403, 'forbidden', 'non-member DELETE');
  assertError(await put(e, m.id, 'ab'), 403, 'forbidden', 'a non-member learns nothing of its input');
  assertError(await put(b, UNKNOWN_ID, UP), 404, 'not_found', 'unknown message');
  assertError(await b.api.put(`/api/messages/x1/reactions/${enc(UP)}`), 400, 'invalid_request', 'malformed id');
  // A removed member: reacted before, refused after; the reaction stays, nobody hears a change.
  await react(b, m.id, UP);
  await aSide.next(isReaction);
  const r = await a.api.del(`/api/chatrooms/${room.id}/members/${b.user.id}`);
  assertStatus(r, 204, 'remove b');
  assertError(await del(b, m.id, UP), 403, 'forbidden', 'removed member DELETE');
  assertError(await put(b, m.id, HEART), 403, 'forbidden', 'removed member PUT');
  assertError(await b.api.get(`/api/messages/${m.id}`), 403, 'forbidden', 'removed member reads nothing');
  await react(a, m.id, HEART); // the fence
  const got = await aSide.next(isReaction);
  assert.equal(got.data.emoji, HEART, `a's next event is the fence: ${show(got.data)}`);
  assert.deepEqual((await historyOf(a, room.id))[0].reactions, { [UP]: [b.user.id], [HEART]: [a.user.id] });
  assert.ok(!eSide.all.some((x) => x.type === 'reaction'), 'the non-member heard nothing');
});

test('at most 64 distinct emoji on a message: the 65th is 409 too_many_reactions; another user joining an existing emoji still passes', async () => {
  const a = await newUser(S, 'rla');
  const b = await newUser(S, 'rlb');
  const room = await group(a, [b], 'limit');
  const m = await send(a, room.id, 'x');
  // 64 distinct one-letter/one-digit "emoji" (each one grapheme cluster).
  const many = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', '!', '*'];
  assert.equal(many.length, 64);
  await Promise.all(many.map((x) => react(a, m.id, x)));
  assertError(await put(a, m.id, UP), 409, 'too_many_reactions', 'the 65th');
  assertError(await put(b, m.id, UP), 409, 'too_many_reactions', 'the 65th by another user');
  const rs = await react(b, m.id, 'a');
  assert.equal(Object.keys(rs).length, 64);
  assert.deepEqual(rs.a, [a.user.id, b.user.id]);
  await react(a, m.id, 'b', false); // one freed: a new one fits again
  await react(a, m.id, UP);
  assert.equal(Object.keys((await historyOf(b, room.id))[0].reactions).length, 64);
});
