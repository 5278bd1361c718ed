// The write delay (`--ws-write-delay-ms`, docs/decisions.md "Write delay"): a socket hands
// its events to a write at most once per delay; events that come within the delay wait for
// its end and leave together in one write; a socket that gets less than one event per delay
// never waits; a write's worth of waiting events (64) goes at once; a kick (shutdown, 1001)
// takes the waiting events along before its close frame.
// The delay is set to its maximum (1,000 ms) so that waiting and not waiting are far apart;
// the assertions on time are one-sided where a slow machine could push them.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/write_delay.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, createGroupOk as group, sendOk } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';

const DELAY = 1000;
const { server, track } = useSuite();
let S;
before(async () => {
  S = await server([...NO_COOLDOWN, '--ws-write-delay-ms', String(DELAY),
    '--ws-inbound-per-sec', '10000', '--ws-inbound-burst', '10000']);
});

const msgOf = (roomId, content) => where(`new_message ${content}`, (e) => e.type === 'new_message' &&
  e.data?.room_id === roomId && e.data?.content === content);

// Timestamps each new_message as it arrives (content → ms), and the last frame of any kind
// (at.last).
function stamp(c) {
  const at = new Map();
  at.last = Date.now();
  c.ws.on('message', (data) => {
    at.last = Date.now();
    try {
      const ev = JSON.parse(data.toString());
      if (ev.type === 'new_message') at.set(ev.data.content, Date.now());
    } catch { /* not ours */ }
  });
  return at;
}

async function metric(srv, series) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `${series} in /metrics`);
  return Number(line.slice(series.length + 1));
}

// Waits until the socket has received nothing for longer than the delay: its last hand-over
// (which came before the last frame's arrival) is then more than a delay ago. (Receipts and
// badges may follow a message; on a slow build they come well after it.)
async function quiet(at) {
  while (Date.now() - at.last <= DELAY + 100) await sleep(DELAY + 150 - (Date.now() - at.last));
}

async function pair(name) {
  const alice = await newUser(S, `${name}a`);
  const bob = await newUser(S, `${name}b`);
  const room = await group(alice, [bob], name);
  const sock = track(await open(S.url, `/api/ws?token=${bob.token}&room_id=${room.id}`));
  return { alice, bob, room, sock, at: stamp(sock) };
}

test('a socket that gets less than one event per delay never waits; events within the delay leave together at its end', async () => {
  const { alice, room, sock, at } = await pair('wdsparse');
  // Sparse: the first message after a quiet spell goes at once (waiting, it would take ≥ 1 s).
  await quiet(at);
  let t0 = Date.now();
  await sendOk(alice, room.id, 'sparse-1');
  await sock.next(msgOf(room.id, 'sparse-1'), 5000);
  assert.ok(at.get('sparse-1') - t0 < DELAY * 0.8, `sparse-1 took ${at.get('sparse-1') - t0} ms: it waited for the delay`);
  await quiet(at);
  t0 = Date.now();
  await sendOk(alice, room.id, 'sparse-2');
  await sock.next(msgOf(room.id, 'sparse-2'), 5000);
  assert.ok(at.get('sparse-2') - t0 < DELAY * 0.8, `sparse-2 took ${at.get('sparse-2') - t0} ms: it waited for the delay`);

  // Two more right away: within the delay of sparse-2's hand-over, so they wait for the
  // window's end (never earlier than the delay after the first of them was committed) and
  // arrive together.
  const writesBefore = await metric(S, 'parley_ws_frames_per_write_count');
  const onesBefore = await metric(S, 'parley_ws_frames_per_write_bucket{le="1"}');
  const committed = Date.now();
  await sendOk(alice, room.id, 'burst-1');
  await sendOk(alice, room.id, 'burst-2');
  await sock.next(msgOf(room.id, 'burst-1'), 5000);
  await sock.next(msgOf(room.id, 'burst-2'), 5000);
  const waited = at.get('burst-1') - committed;
  assert.ok(waited >= DELAY * 0.5, `burst-1 arrived ${waited} ms after its send: it did not wait for the delay`);
  assert.ok(at.get('burst-2') - at.get('burst-1') < 100,
    `burst-1 and burst-2 arrived ${at.get('burst-2') - at.get('burst-1')} ms apart: not in one write`);
  // One write carried both (the only socket that received anything meanwhile is bob's).
  const writes = (await metric(S, 'parley_ws_frames_per_write_count')) - writesBefore;
  const ones = (await metric(S, 'parley_ws_frames_per_write_bucket{le="1"}')) - onesBefore;
  assert.ok(writes - ones >= 1, `a write of two or more frames: ${writes} writes, ${ones} of one frame`);
  // The order is kept.
  const seqs = sock.all.filter((e) => e.type === 'new_message').map((e) => e.data.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'new_message in seq order');
});

test('a write\'s worth of waiting events goes at once, without waiting for the delay\'s end', async () => {
  const { alice, room, sock } = await pair('wdfull');
  const fullBefore = await metric(S, 'parley_ws_write_delay_full_total');
  await sendOk(alice, room.id, 'full-0'); // at once: starts the window
  await sock.next(msgOf(room.id, 'full-0'), 5000);
  // 300 sends at once (group commit takes them in batches): bob's socket gets far more than
  // 64 events within one delay.
  const N = 300;
  await Promise.all(Array.from({ length: N }, (_, i) => sendOk(alice, room.id, `full-${i + 1}`)));
  const got = await sock.take(where('new_message', (e) => e.type === 'new_message'), N, 30000);
  assert.deepEqual(got.map((e) => e.data.content).sort(), Array.from({ length: N }, (_, i) => `full-${i + 1}`).sort(),
    'every message once');
  const seqs = got.map((e) => e.data.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `seq order without gaps: ${seqs.slice(0, 20)}…`);
  const full = (await metric(S, 'parley_ws_write_delay_full_total')) - fullBefore;
  assert.ok(full >= 1, `hand-overs of a full write before the delay's end: ${full}`);
  // No write carries more than a write's worth of data frames.
  assert.equal(await metric(S, 'parley_ws_frames_per_write_count'), await metric(S, 'parley_ws_frames_per_write_bucket{le="64"}'),
    'no write of more than 64 frames');
});

test('shutdown: the events the delay holds leave before the close frame', async () => {
  const own = await server([...NO_COOLDOWN, '--ws-write-delay-ms', String(DELAY)]);
  const alice = await newUser(own, 'wdkicka');
  const bob = await newUser(own, 'wdkickb');
  const room = await group(alice, [bob], 'wdkick');
  const sock = track(await open(own.url, `/api/ws?token=${bob.token}&room_id=${room.id}`));
  await sendOk(alice, room.id, 'kick-0'); // at once: starts the window
  await sock.next(msgOf(room.id, 'kick-0'), 5000);
  await sendOk(alice, room.id, 'kick-1'); // waits for the window's end…
  await sleep(100); // (fanned out to bob's socket by now, well within the delay)
  const closing = own.close(); // …which the shutdown does not wait for
  const info = await sock.closed;
  await closing;
  assert.equal(info.code, 1001, `close code ${JSON.stringify(info)}`);
  assert.ok(sock.all.some((e) => e.type === 'new_message' && e.data.content === 'kick-1'),
    `kick-1 reached the socket before the close: ${JSON.stringify(sock.all.map((e) => e.type))}`);
});
