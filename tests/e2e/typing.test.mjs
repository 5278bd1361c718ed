// Typing indicators (CONTRACT.md "Beyond the seed" → Typing) against a real `parley serve`:
// client `typing` {room_id, state} → `typing` {room_id, user_id, state} to the room's other
// members (never to the typer's own connections), refusals as `error`, the 6 s expiry, the
// stop on the typer's disconnect and the coalescing of repeated starts (docs/decisions.md
// "Typing"). The cross-instance case is in redis_bus.test.mjs.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/typing.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, assertStatus, createGroupOk as group } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';

const { server, track } = useSuite();
let S;
before(async () => { S = await server(NO_COOLDOWN); });

const sidebar = async (u) => track(await open(S.url, `/ws?token=${u.token}`));
const chatroom = async (u, roomId) => track(await open(S.url, `/api/ws?token=${u.token}&room_id=${roomId}`));
const typingFrame = (c, data) => c.send({ type: 'typing', data });
const isTyping = where('typing', (e) => e.type === 'typing');
const typingOf = (state) => where(`typing ${state}`, (e) => e.type === 'typing' && e.data.state === state);
const typingSeen = (c) => c.all.filter((e) => e.type === 'typing');

function assertTyping(ev, roomId, userId, state) {
  assert.equal(ev.type, 'typing');
  assert.deepEqual(Object.keys(ev.data).sort(), ['room_id', 'state', 'user_id'], 'typing fields');
  assert.deepEqual(ev.data, { room_id: roomId, user_id: userId, state }, 'typing data');
}

// Three members and an outsider, each with the sockets the tests use.
async function cast() {
  const alice = await newUser(S, 'ta');
  const bob = await newUser(S, 'tb');
  const carol = await newUser(S, 'tc');
  const dave = await newUser(S, 'td');
  const room = await group(alice, [bob, carol], 'typing');
  return { alice, bob, carol, dave, room };
}

test('typing start/stop reaches the other members (sidebar and chatroom), never the typer\'s own connections nor outsiders', async () => {
  const { alice, bob, carol, dave, room } = await cast();
  const aliceSide = await sidebar(alice);
  const aliceSide2 = await sidebar(alice);
  const aliceRoom = await chatroom(alice, room.id);
  const bobSide = await sidebar(bob);
  const bobRoom = await chatroom(bob, room.id);
  const carolSide = await sidebar(carol);
  const daveSide = await sidebar(dave);

  typingFrame(aliceSide, { room_id: room.id, state: 'start' });
  for (const c of [bobSide, bobRoom, carolSide]) assertTyping(await c.next(isTyping, 3000), room.id, alice.user.id, 'start');
  typingFrame(aliceSide, { room_id: room.id, state: 'stop' });
  for (const c of [bobSide, bobRoom, carolSide]) assertTyping(await c.next(isTyping, 3000), room.id, alice.user.id, 'stop');

  // A chatroom socket types in its own room without naming it.
  typingFrame(bobRoom, { state: 'start' });
  for (const c of [aliceSide, aliceRoom, carolSide]) assertTyping(await c.next(isTyping, 3000), room.id, bob.user.id, 'start');
  typingFrame(bobRoom, { room_id: room.id, state: 'stop' });
  for (const c of [aliceSide, aliceRoom, carolSide]) assertTyping(await c.next(isTyping, 3000), room.id, bob.user.id, 'stop');

  await sleep(300);
  // The typer's own connections heard none of their own typing; the outsider nothing at all.
  assert.deepEqual(typingSeen(aliceSide2).concat(typingSeen(aliceSide), typingSeen(aliceRoom)).filter((e) => e.data.user_id === alice.user.id), []);
  assert.deepEqual(typingSeen(bobSide).concat(typingSeen(bobRoom)).filter((e) => e.data.user_id === bob.user.id), []);
  assert.deepEqual(typingSeen(daveSide), [], 'an outsider hears nothing');
  // Nothing stored, no error for the good frames.
  for (const c of [aliceSide, bobRoom]) assert.equal(c.all.filter((e) => e.type === 'error').length, 0, 'no error');
  const r = await alice.api.get(`/api/chatrooms/${room.id}/messages`);
  assert.deepEqual(r.body.messages, [], 'typing is never stored');
});

test('a non-member\'s typing → error forbidden, and nobody hears it; bad input → error invalid_request', async () => {
  const { alice, bob, dave, room } = await cast();
  const bobSide = await sidebar(bob);
  const aliceSide = await sidebar(alice);
  const daveSide = await sidebar(dave);
  typingFrame(daveSide, { room_id: room.id, state: 'start' });
  const err = await daveSide.next('error', 3000);
  assert.equal(err.data.code, 'forbidden');
  assert.equal(typeof err.data.message, 'string');

  const bad = [
    [{ room_id: room.id, state: 'typing' }, 'unknown state'],
    [{ room_id: room.id }, 'missing state'],
    [{ room_id: room.id, state: 1 }, 'state not a string'],
    [{ state: 'start' }, 'missing room_id on the sidebar'],
    [{ room_id: 12, state: 'start' }, 'room_id not a string'],
    [{ room_id: '0x1', state: 'start' }, 'malformed room_id'],
  ];
  for (const [data, what] of bad) {
    typingFrame(aliceSide, data);
    const e = await aliceSide.next('error', 3000);
    assert.equal(e.data.code, 'invalid_request', what);
    assert.match(e.data.message, /room_id|state/, `${what}: the message names the field`);
  }
  // A chatroom socket may not type in another room.
  const other = await group(alice, [], 'other');
  const aliceRoom = await chatroom(alice, room.id);
  typingFrame(aliceRoom, { room_id: other.id, state: 'start' });
  assert.equal((await aliceRoom.next('error', 3000)).data.code, 'invalid_request', 'another room on a chatroom socket');
  // An unknown room is refused as well (a room the user is not in, as far as they can tell).
  typingFrame(aliceSide, { room_id: '987654321987654321', state: 'start' });
  assert.equal((await aliceSide.next('error', 3000)).data.code, 'forbidden', 'unknown room');

  await bobSide.expectNone(isTyping, 500);
  assert.deepEqual(typingSeen(bobSide), [], 'nobody heard the refused frames');
  // The connections stay open.
  typingFrame(aliceSide, { room_id: room.id, state: 'start' });
  assertTyping(await bobSide.next(isTyping, 3000), room.id, alice.user.id, 'start');
});

test('a start not refreshed ends by itself about 6 s later: the members get stop', async () => {
  const { alice, bob, room } = await cast();
  const aliceSide = await sidebar(alice);
  const bobSide = await sidebar(bob);
  const t0 = Date.now();
  typingFrame(aliceSide, { room_id: room.id, state: 'start' });
  await bobSide.next(typingOf('start'), 3000);
  const stop = await bobSide.next(isTyping, 12000);
  const after = Date.now() - t0;
  assertTyping(stop, room.id, alice.user.id, 'stop');
  // The expiry counts from the start, which the server received after t0: never sooner.
  assert.ok(after >= 5500, `stop after ${after} ms, expected about 6,000`);
  await bobSide.expectNone(isTyping, 500);
});

test('the typer\'s last socket on the room closes → stop at once (not at the expiry); another socket of theirs keeps it', async () => {
  const { alice, bob, room } = await cast();
  const bobSide = await sidebar(bob);
  // Typing on a chatroom socket while a sidebar is also open: closing the chatroom socket
  // leaves the sidebar, which covers the room, so no stop yet.
  const aliceSide = await sidebar(alice);
  const aliceRoom = await chatroom(alice, room.id);
  typingFrame(aliceRoom, { state: 'start' });
  await bobSide.next(typingOf('start'), 3000);
  await aliceRoom.close();
  await bobSide.expectNone(isTyping, 700);
  // Now the last one.
  const t0 = Date.now();
  await aliceSide.close();
  assertTyping(await bobSide.next(isTyping, 4000), room.id, alice.user.id, 'stop');
  assert.ok(Date.now() - t0 < 4000, 'the stop came with the disconnect, not with the 6 s expiry');
});

test('coalescing: a burst of 20 starts in 1 s → at most 2 typing events reach a member, then one stop', async () => {
  const { alice, bob, room } = await cast();
  const aliceSide = await sidebar(alice);
  const bobSide = await sidebar(bob);
  for (let i = 0; i < 20; ++i) typingFrame(aliceSide, { room_id: room.id, state: 'start' });
  await bobSide.next(typingOf('start'), 3000);
  await sleep(2500);  // past the coalescing interval: the trailing start, if any, has come
  const starts = typingSeen(bobSide).filter((e) => e.data.state === 'start');
  assert.ok(starts.length >= 1 && starts.length <= 2, `${starts.length} starts reached the member`);
  assert.equal(typingSeen(bobSide).filter((e) => e.data.state === 'stop').length, 0, 'no stop yet');
  assert.equal(aliceSide.all.filter((e) => e.type === 'error').length, 0, 'no frame refused');
  // A stop always goes out at once, even right after a start.
  typingFrame(aliceSide, { room_id: room.id, state: 'start' });
  typingFrame(aliceSide, { room_id: room.id, state: 'stop' });
  assertTyping(await bobSide.next(typingOf('stop'), 3000), room.id, alice.user.id, 'stop');
  bobSide.drain(isTyping);
  await bobSide.expectNone(isTyping, 1500);
  assert.equal(typingSeen(bobSide).filter((e) => e.data.state === 'stop').length, 1, 'exactly one stop');
});

test('a typer who leaves the room: the others get stop at once, and a later typing there is refused', async () => {
  const { bob, carol, room } = await cast();
  const bobSide = await sidebar(bob);
  const carolSide = await sidebar(carol);
  typingFrame(carolSide, { room_id: room.id, state: 'start' });
  await bobSide.next(typingOf('start'), 3000);
  const t0 = Date.now();
  const r = await carol.api.del(`/api/chatrooms/${room.id}/members/${carol.user.id}`);
  assert.equal(r.status, 204, 'carol leaves');
  assertTyping(await bobSide.next(isTyping, 4000), room.id, carol.user.id, 'stop');
  assert.ok(Date.now() - t0 < 4000, 'with the leave, not with the 6 s expiry');
  await sleep(200);
  typingFrame(carolSide, { room_id: room.id, state: 'start' });
  assert.equal((await carolSide.next('error', 3000)).data.code, 'forbidden', 'no longer a member');
  await bobSide.expectNone(isTyping, 500);
});
