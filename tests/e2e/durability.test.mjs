// Durability across restarts (CONTRACT.md: "a 201 means the message is on disk" per
// docs/decisions.md "Storage threading and group commit"; SIGTERM → finish in-flight, flush,
// exit 0).
//  1. kill -9 mid-stream: every message acknowledged with 201 before the kill is there after a
//     restart on the same data dir, with the same id/seq/content; seqs are 1..N without gaps;
//     nothing exists that was never attempted; acknowledged read watermarks survive too.
//  2. clean restart: SIGTERM while sends are in flight → exit code 0 within 10 s; after the
//     restart the data, the watermarks (unread counts, first-unread, read-by-who with read_at)
//     and the memberships are unchanged, and the old tokens still work (the JWT key file next
//     to the SQLite file is reused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, newUser, client } from './lib/server.mjs';
import { assertMessage } from './lib/rest-helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const show = (res) => `${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`;

// Pages through a room's whole history (forward, after_seq) and returns the messages.
async function history(api, roomId) {
  const out = [];
  for (let after = 0; ;) {
    const res = await api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assert.equal(res.status, 200, `history of ${roomId}: ${show(res)}`);
    out.push(...res.body.messages);
    if (!res.body.has_more) break;
    assert.ok(res.body.messages.length > 0, 'has_more with an empty page');
    after = res.body.messages.at(-1).seq;
  }
  return out;
}

// Runs `loops` concurrent send loops until stop() is called or a request fails (the server
// is gone). Records every attempt and every acknowledged (201) message.
function sendStorm({ senders, roomIds, loops, tag }) {
  const attempted = new Map(); // content → {roomId, senderId}
  const acked = []; // {roomId, id, seq, content, senderId}
  const errors = [];
  const failures = []; // transport errors (one per loop at most), for the diagnostics
  let stopped = false;
  const runners = [];
  for (let l = 0; l < loops; l++) {
    const sender = senders[l % senders.length];
    const roomId = roomIds[l % roomIds.length];
    runners.push((async () => {
      for (let i = 0; !stopped; i++) {
        const content = `${tag} loop ${l} msg ${i}`;
        attempted.set(content, { roomId, senderId: sender.user.id });
        let res;
        try {
          res = await sender.api.post(`/api/chatrooms/${roomId}/messages`, { content, client_msg_id: `${tag}-${l}-${i}` });
        } catch (e) {
          failures.push(e.cause?.code ?? e.cause?.message ?? e.message);
          return; // connection refused/reset: the server is down
        }
        if (res.status === 201) acked.push({ roomId, id: res.body.id, seq: res.body.seq, content, senderId: sender.user.id, cmid: `${tag}-${l}-${i}` });
        else if (res.status !== 503) errors.push(`${content}: ${show(res)}`);
        // 503 is tolerated while shutting down; anything else is a failure.
      }
    })());
  }
  return {
    attempted, acked, errors, failures,
    stop() { stopped = true; },
    done: () => Promise.all(runners),
  };
}

// Checks the stored history of every room against what was attempted and acknowledged.
async function verifyHistory(api, roomIds, storm) {
  const byRoom = new Map();
  for (const roomId of roomIds) {
    const msgs = await history(api, roomId);
    byRoom.set(roomId, msgs);
    // seqs 1..N, gap-free, ascending
    msgs.forEach((m, i) => {
      assertMessage(m, { room_id: roomId });
      assert.equal(m.seq, i + 1, `room ${roomId}: seq at position ${i} is ${m.seq}`);
    });
    // nothing that was never attempted, nothing twice
    const seen = new Set();
    for (const m of msgs) {
      const a = storm.attempted.get(m.content);
      assert.ok(a, `room ${roomId}: message seq ${m.seq} "${m.content}" was never attempted`);
      assert.equal(a.roomId, roomId, `"${m.content}" stored in the wrong room`);
      assert.equal(m.sender_id, a.senderId, `"${m.content}" has the wrong sender`);
      assert.ok(!seen.has(m.content), `"${m.content}" stored twice`);
      seen.add(m.content);
    }
    const r = await api.get(`/api/chatrooms/${roomId}`);
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.last_seq, msgs.length, `room ${roomId}: last_seq vs history`);
  }
  // every acknowledged message is there, unchanged
  const missing = [];
  for (const a of storm.acked) {
    const m = byRoom.get(a.roomId)[a.seq - 1];
    if (!m || m.id !== a.id || m.content !== a.content || m.seq !== a.seq) {
      missing.push(`${a.content} (id ${a.id}, seq ${a.seq}) → ${m ? `id ${m.id} seq ${m.seq} "${m.content}"` : 'absent'}`);
    }
  }
  assert.deepEqual(missing, [], `${missing.length} of ${storm.acked.length} acknowledged messages lost or changed after restart`);
  return byRoom;
}

test('every message acknowledged before kill -9 survives a restart', { timeout: 120_000 }, async (t) => {
  let server = await startServer();
  const dir = server.dir;
  t.after(async () => { await server.stop('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

  const [a, b, c] = [await newUser(server, 'dur_a'), await newUser(server, 'dur_b'), await newUser(server, 'dur_c')];
  const rooms = [];
  for (const name of ['kill room 1', 'kill room 2']) {
    const r = await a.api.post('/api/chatrooms', { name, member_ids: [b.user.id, c.user.id] });
    assert.equal(r.status, 201, show(r));
    rooms.push(r.body.id);
  }
  // Everything attempted and acknowledged over all rounds; c's highest acknowledged watermark.
  const all = { attempted: new Map(), acked: [] };
  const cAcked = new Map(rooms.map((id) => [id, 0]));

  // Two rounds: storm, kill -9 mid-stream, restart on the same dir, verify (cumulatively).
  for (let round = 0; round < 2; round++) {
    // Old tokens keep working across restarts (the JWT key file is reused).
    const [ar, br, cr] = [a, b, c].map((u) => ({ ...u, api: client(server.url, u.token) }));
    const storm = sendStorm({ senders: [ar, br], roomIds: rooms, loops: 8, tag: `k${round}` });
    // Meanwhile c keeps marking everything read; the highest acknowledged watermark must survive.
    let readerStopped = false;
    const reader = (async () => {
      while (!readerStopped) {
        for (const roomId of rooms) {
          let res;
          try { res = await cr.api.post(`/api/chatrooms/${roomId}/mark-all-read`); } catch { return; }
          if (res.status === 200) cAcked.set(roomId, Math.max(cAcked.get(roomId), res.body.up_to_seq));
        }
      }
    })();

    await sleep(1500);
    assert.ok(storm.acked.length > 0, `round ${round}: no message was acknowledged before the kill`);
    const ackedAtKill = storm.acked.length;
    const exit = await server.stop('SIGKILL'); // mid-stream: the loops are still sending
    storm.stop();
    readerStopped = true;
    await Promise.all([storm.done(), reader]);
    assert.equal(exit.signal, 'SIGKILL', `server exit: ${JSON.stringify(exit)}`);
    assert.deepEqual(storm.errors, [], `round ${round}: unexpected answers while sending`);
    for (const [k, v] of storm.attempted) all.attempted.set(k, v);
    all.acked.push(...storm.acked);
    t.diagnostic(`round ${round}: attempted ${storm.attempted.size}, acknowledged ${storm.acked.length} ` +
      `(${ackedAtKill} when the kill was sent); transport errors: ${storm.failures.join(', ')}`);

    server = await startServer({ dir });
    const a2 = client(server.url, a.token);
    const c2 = client(server.url, c.token);
    const me = await a2.get('/api/me');
    assert.equal(me.status, 200, `old token after restart: ${show(me)}`);
    assert.equal(me.body.id, a.user.id);

    const byRoom = await verifyHistory(a2, rooms, all);
    const total = [...byRoom.values()].reduce((n, m) => n + m.length, 0);
    t.diagnostic(`round ${round}: stored after restart ${total} (acknowledged ${all.acked.length}, attempted ${all.attempted.size} so far)`);

    // c's acknowledged watermarks survived: unread = last_seq - wm, and wm ≥ the highest acked up_to_seq.
    const uc = await c2.get('/api/messages/unread-counts');
    assert.equal(uc.status, 200, show(uc));
    for (const roomId of rooms) {
      const n = byRoom.get(roomId).length;
      const wm = n - uc.body.unread_counts[roomId];
      assert.ok(wm >= cAcked.get(roomId), `room ${roomId}: c's watermark ${wm} < acknowledged ${cAcked.get(roomId)}`);
      assert.ok(wm >= 0 && wm <= n, `room ${roomId}: c's watermark ${wm} outside 0..${n}`);
      const fu = await c2.get(`/api/chatrooms/${roomId}/first-unread`);
      assert.equal(fu.status, 200, show(fu));
      assert.equal(fu.body.unread_count, n - wm, `room ${roomId}: first-unread unread_count`);
      assert.equal(fu.body.message?.seq ?? null, wm < n ? wm + 1 : null, `room ${roomId}: first-unread after restart`);
    }

    // An acknowledged client_msg_id is still recognised after the crash (idempotent retry).
    const ackedByA = storm.acked.find((m) => m.senderId === a.user.id);
    if (ackedByA) {
      const retry = await a2.post(`/api/chatrooms/${ackedByA.roomId}/messages`,
        { content: ackedByA.content, client_msg_id: ackedByA.cmid });
      assert.equal(retry.status, 200, `idempotent retry after restart: ${show(retry)}`);
      assert.equal(retry.body.id, ackedByA.id);
      assert.equal(retry.body.seq, ackedByA.seq);
    }
  }

  // The server goes on where it stopped: the next seq is N+1.
  const a3 = client(server.url, a.token);
  const n0 = (await history(a3, rooms[0])).length;
  const next = await a3.post(`/api/chatrooms/${rooms[0]}/messages`, { content: 'after the crashes' });
  assert.equal(next.status, 201, show(next));
  assert.equal(next.body.seq, n0 + 1, 'seq after restart');
});

test('SIGTERM exits 0 and a clean restart keeps data and read state', { timeout: 120_000 }, async (t) => {
  let server = await startServer();
  const dir = server.dir;
  t.after(async () => { await server.stop('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

  const [a, b, c] = [await newUser(server, 'cln_a'), await newUser(server, 'cln_b'), await newUser(server, 'cln_c')];
  const room = await a.api.post('/api/chatrooms', { name: 'clean room', member_ids: [b.user.id, c.user.id] });
  assert.equal(room.status, 201, show(room));
  const roomId = room.body.id;
  const direct = await b.api.post('/api/chatrooms', { type: 'direct', member_ids: [c.user.id] });
  assert.equal(direct.status, 201, show(direct));
  const directId = direct.body.id;
  // The SIGTERM storm goes to its own room, so that the state above stays comparable.
  const stormRoom = await a.api.post('/api/chatrooms', { name: 'storm room', member_ids: [b.user.id, c.user.id] });
  assert.equal(stormRoom.status, 201, show(stormRoom));
  const stormId = stormRoom.body.id;

  const sent = [];
  for (let i = 0; i < 30; i++) {
    const r = await a.api.post(`/api/chatrooms/${roomId}/messages`, { content: `clean ${i}`, client_msg_id: `cl-${i}` });
    assert.equal(r.status, 201, show(r));
    sent.push(r.body);
  }
  for (let i = 0; i < 5; i++) {
    const r = await b.api.post(`/api/chatrooms/${directId}/messages`, { content: `direct ${i}` });
    assert.equal(r.status, 201, show(r));
  }
  // Varied read state: b reads #12 (single), c bulk-reads #6 and #20, c reads #3 of the direct room.
  let r = await b.api.post(`/api/messages/${sent[11].id}/read`);
  assert.equal(r.status, 200, show(r));
  r = await c.api.post('/api/messages/read', { message_ids: [sent[5].id, sent[19].id] });
  assert.equal(r.status, 200, show(r));
  const directMsgs = await history(c.api, directId);
  r = await c.api.post(`/api/messages/${directMsgs[2].id}/read`);
  assert.equal(r.status, 200, show(r));
  // A join and a leave, so membership is part of what must survive.
  const d = await newUser(server, 'cln_d');
  r = await a.api.post(`/api/chatrooms/${roomId}/members`, { user_id: d.user.id });
  assert.equal(r.status, 200, show(r));
  r = await d.api.del(`/api/chatrooms/${roomId}/members/${d.user.id}`);
  assert.equal(r.status, 204, show(r));

  // A snapshot of everything observable about the rooms other than the storm room.
  const norm = (xs) => xs && [...xs].sort((x, y) => (x.user_id < y.user_id ? -1 : 1));
  async function snapshot(url) {
    const snap = {};
    for (const [name, u] of Object.entries({ a, b, c, d })) {
      const api = client(url, u.token);
      const uc = await api.get('/api/messages/unread-counts');
      assert.equal(uc.status, 200, show(uc));
      const rooms = await api.get('/api/chatrooms');
      assert.equal(rooms.status, 200, show(rooms));
      const first = {};
      for (const rm of rooms.body.chatrooms) {
        if (rm.id === stormId) continue;
        const fu = await api.get(`/api/chatrooms/${rm.id}/first-unread`);
        assert.equal(fu.status, 200, show(fu));
        first[rm.id] = fu.body;
      }
      const counts = { ...uc.body.unread_counts };
      delete counts[stormId];
      snap[name] = {
        unread: counts,
        rooms: rooms.body.chatrooms.filter((x) => x.id !== stormId)
          .map((x) => ({ ...x, members: x.members.map((m) => m.id).sort() }))
          .sort((x, y) => (x.id < y.id ? -1 : 1)),
        first,
      };
    }
    snap.history = await history(client(url, a.token), roomId);
    snap.direct = await history(client(url, b.token), directId);
    snap.readByWho = [];
    for (const m of [...snap.history, ...snap.direct]) {
      const rbw = await client(url, m.room_id === roomId ? a.token : b.token).get(`/api/messages/${m.id}/read-by-who`);
      assert.equal(rbw.status, 200, show(rbw));
      snap.readByWho.push({ ...rbw.body, read_by: norm(rbw.body.read_by), unread_by: norm(rbw.body.unread_by),
        delivered_to: norm(rbw.body.delivered_to) });
    }
    return snap;
  }
  const before = await snapshot(server.url);
  // Sanity of the snapshot itself (the watermarks set above).
  assert.deepEqual(before.a.unread, { [roomId]: 0 }, 'a unread before');
  assert.deepEqual(before.b.unread, { [roomId]: 18, [directId]: 0 }, 'b unread before');
  assert.deepEqual(before.c.unread, { [roomId]: 10, [directId]: 2 }, 'c unread before');
  assert.deepEqual(before.d.unread, {}, 'd unread before');

  // SIGTERM with sends in flight: everything acknowledged stays, exit code 0 within 10 s.
  const storm = sendStorm({ senders: [a, b], roomIds: [stormId], loops: 4, tag: 't' });
  await sleep(300);
  const t0 = Date.now();
  const exit = await server.stop('SIGTERM');
  const took = Date.now() - t0;
  storm.stop();
  await storm.done();
  assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM (stderr: ${server.stderr.slice(-2000)})`);
  assert.ok(took < 10_000, `SIGTERM took ${took} ms`);
  assert.deepEqual(storm.errors, [], 'unexpected answers while shutting down');
  t.diagnostic(`SIGTERM: exit 0 after ${took} ms; storm attempted ${storm.attempted.size}, acknowledged ${storm.acked.length}; transport errors: ${storm.failures.join(', ')}`);

  server = await startServer({ dir });
  const me = await client(server.url, b.token).get('/api/me');
  assert.equal(me.status, 200, `old token after restart: ${show(me)}`);
  assert.equal(me.body.id, b.user.id);

  // The storm room: every acknowledged message there, gap-free, nothing unattempted.
  const stormMsgs = (await verifyHistory(client(server.url, a.token), [stormId], storm)).get(stormId);
  t.diagnostic(`storm room after restart: ${stormMsgs.length} stored`);

  // Everything else exactly as before (messages with all fields, read-by-who with read_at,
  // unread counts, first-unread, rooms and their members, last_message).
  const after = await snapshot(server.url);
  assert.deepEqual(after.history, before.history, 'group room history unchanged');
  assert.deepEqual(after.direct, before.direct, 'direct room history unchanged');
  assert.deepEqual(after.readByWho, before.readByWho, 'read-by-who (with read_at) unchanged');
  for (const name of ['a', 'b', 'c', 'd']) {
    assert.deepEqual(after[name].unread, before[name].unread, `${name}: unread counts`);
    assert.deepEqual(after[name].first, before[name].first, `${name}: first-unread`);
    assert.deepEqual(after[name].rooms, before[name].rooms, `${name}: rooms`);
  }
  // The storm room's unread counts follow the watermark rule: c never read it.
  const cu = await client(server.url, c.token).get('/api/messages/unread-counts');
  assert.equal(cu.body.unread_counts[stormId], stormMsgs.length, 'c unread in the storm room');
});
