// Overload: 1,000 reading sockets and senders above the sustainable rate, against a real
// `parley serve` with the default outbound queue bounds (CONTRACT.md "WebSocket": "when the
// *server* falls behind (its own writers starved under a burst), it sheds load at the entrance
// instead — new sends get 503 `unavailable` with `Retry-After` over REST, or `error` code
// `overloaded` over WebSocket — and a client that keeps reading is never closed for it").
//
// Readers: READER_USERS members × SOCKETS_PER_USER sidebar sockets (default 50 × 20), each of
// which reads everything at once and does only what is needed to check order (no JSON parse
// per frame), so that the readers keep up. Senders, for SEND_MS (default 6 s): one user over
// REST with REST_CONCURRENCY requests in flight, and one user over a sidebar socket with
// WS_WINDOW `send_message` frames in flight (the inbound limit raised out of the way). Then:
//   - no reader was closed (no close event at all: in particular no 1008 `slow consumer`),
//     and none got an `error` frame;
//   - every send that got 201 or `ack` is stored, and the stored messages are exactly those
//     (REST history = the acknowledged ids, seqs 1..last_seq, nothing from a refused send);
//   - every reader got every stored message exactly once, in seq order (strictly increasing
//     and gap-free up to last_seq), within DRAIN_MS after the senders stop;
//   - every refusal over REST is 503 `unavailable` with Retry-After (nothing else: the REST
//     rate limit is off), every refusal over WebSocket is `error` `overloaded` with the
//     send's client_msg_id; the WebSocket sender's own socket stays open too.
// Env: PARLEY_OVERLOAD_USERS (50), PARLEY_OVERLOAD_SOCKETS_PER_USER (20), PARLEY_OVERLOAD_SEND_MS
// (6000), PARLEY_OVERLOAD_REST_CONCURRENCY (32), PARLEY_OVERLOAD_WS_WINDOW (32),
// PARLEY_OVERLOAD_DRAIN_MS (25000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, newUser } from './lib/server.mjs';
import { sleep, assertStatus } from './lib/rest-helpers.mjs';
import { wsUrl } from './lib/ws-client.mjs';

const envNum = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);
const READER_USERS = envNum('PARLEY_OVERLOAD_USERS', 50);
const SOCKETS_PER_USER = envNum('PARLEY_OVERLOAD_SOCKETS_PER_USER', 20);
const SEND_MS = envNum('PARLEY_OVERLOAD_SEND_MS', 6000);
const REST_CONCURRENCY = envNum('PARLEY_OVERLOAD_REST_CONCURRENCY', 32);
const WS_WINDOW = envNum('PARLEY_OVERLOAD_WS_WINDOW', 32);
const DRAIN_MS = envNum('PARLEY_OVERLOAD_DRAIN_MS', 25000);

const NEW_MESSAGE = Buffer.from('"type":"new_message"');
const ERROR = Buffer.from('"type":"error"');
const SEQ = Buffer.from('"seq":');

// Reads the integer after `"seq":` in a new_message frame (the message's own seq: the data
// object holds no other "seq" key).
function seqOf(buf) {
  const i = buf.indexOf(SEQ);
  if (i < 0) return -1;
  let n = 0;
  let j = i + SEQ.length;
  for (; j < buf.length && buf[j] >= 48 && buf[j] <= 57; j++) n = n * 10 + (buf[j] - 48);
  return j === i + SEQ.length ? -1 : n;
}

// One reading socket: counts new_message frames and checks their order as they come.
// sender: the socket also sends (its own messages do not come back to it, so its seqs have
// gaps, and its error frames are answers to its sends).
class Reader {
  constructor(url, label, { sender = false } = {}) {
    this.sender = sender;
    this.label = label;
    this.url = url;
    this.count = 0;
    this.last = 0;
    this.problems = [];
    this.close = null;
    this.errors = [];
    this.connected = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => reject(new Error(`${this.label}: not open within 15 s`)), 15000);
      ws.on('unexpected-response', (_q, res) => { clearTimeout(timer); reject(new Error(`${this.label}: upgrade refused ${res.statusCode}`)); });
      ws.on('error', (e) => { if (!this.connected) { clearTimeout(timer); reject(e); } else this.problems.push(`socket error ${e.message}`); });
      ws.on('close', (code, reason) => { this.close = { code, reason: reason.toString() }; });
      ws.on('message', (data, isBinary) => {
        if (isBinary) { this.problems.push('binary frame'); return; }
        if (!this.connected) { this.connected = true; clearTimeout(timer); resolve(this); return; } // `connected`
        if (data.indexOf(NEW_MESSAGE) >= 0 && data.indexOf(NEW_MESSAGE) < 16) {
          const s = seqOf(data);
          if ((s <= this.last || (s !== this.last + 1 && !this.sender)) && this.problems.length < 5) {
            this.problems.push(s <= this.last ? `seq ${s} after ${this.last} (duplicate or out of order)` : `seq ${s} after ${this.last} (gap)`);
          }
          if (s > this.last) this.last = s;
          this.count++;
        } else if (!this.sender && data.indexOf(ERROR) >= 0 && data.indexOf(ERROR) < 16 && this.errors.length < 5) {
          this.errors.push(data.toString());
        }
      });
    });
  }
}

test(`overload: ${READER_USERS * SOCKETS_PER_USER} reading sockets, senders above the sustainable rate → refusals at the entrance only, no reader closed, nothing acknowledged lost`, { timeout: 120_000 }, async (t) => {
  const server = await startServer({ args: ['--ws-cooldown-ms', '0', '--ws-inbound-per-sec', '100000', '--ws-inbound-burst', '100000'] });
  const readers = [];
  t.after(async () => {
    for (const r of readers) r.ws?.terminate();
    await server.close();
  });

  // ---- users, one room with everyone, the reading sockets ----
  const t0 = Date.now();
  const restSender = await newUser(server, 'ovr');
  const wsSender = await newUser(server, 'ovw');
  const members = [];
  {
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < READER_USERS) { const i = next++; members[i] = await newUser(server, `ovm${i}_`); }
    }));
  }
  const room = await restSender.api.post('/api/chatrooms', { name: 'overload', member_ids: [wsSender, ...members].map((u) => u.user.id) });
  assertStatus(room, 201, 'create room');
  const roomId = room.body.id;
  const tUsers = Date.now() - t0;
  for (const [i, u] of members.entries()) {
    for (let k = 0; k < SOCKETS_PER_USER; k++) readers.push(new Reader(wsUrl(server.url, `/ws?token=${u.token}`), `member ${i} socket ${k}`));
  }
  for (let i = 0; i < readers.length; i += 100) await Promise.all(readers.slice(i, i + 100).map((r) => r.open()));
  const tOpen = Date.now() - t0 - tUsers;

  // The WebSocket sender's socket: reads the REST sender's messages like any reader, and
  // sends its own (which it does not get back: it is the sending connection).
  const wsConn = new Reader(wsUrl(server.url, `/ws?token=${wsSender.token}`), 'WebSocket sender', { sender: true });
  await wsConn.open();
  readers.push(wsConn);
  const wsAnswers = new Map(); // cmid → resolve
  const wsOrder = []; // cmids waiting, oldest first (an error without client_msg_id answers the oldest)
  const wsOutcome = { ack: [], overloaded: 0, other: [] };
  wsConn.ws.on('message', (data) => {
    const isAck = data.indexOf('"type":"ack"') >= 0 && data.indexOf('"type":"ack"') < 16;
    const isErr = data.indexOf(ERROR) >= 0 && data.indexOf(ERROR) < 16;
    if (!isAck && !isErr) return;
    const ev = JSON.parse(data.toString());
    let cmid = ev.data?.client_msg_id;
    if (cmid === undefined && isErr && wsOrder.length) cmid = wsOrder[0];
    const done = wsAnswers.get(cmid);
    if (!done) { wsOutcome.other.push(`answer for no send in flight: ${data.toString().slice(0, 200)}`); return; }
    wsAnswers.delete(cmid);
    wsOrder.splice(wsOrder.indexOf(cmid), 1);
    done(ev);
  });

  await sleep(300); // the sidebar snapshots
  const stats = { rest201: [], rest503: 0, restOther: [], retryAfterMissing: 0, slowest: 0 };

  // ---- senders ----
  const tSend = Date.now();
  const until = tSend + SEND_MS;
  let n = 0;
  const restLoop = async () => {
    while (Date.now() < until) {
      const k = n++;
      const t1 = Date.now();
      let res;
      try {
        res = await restSender.api.post(`/api/chatrooms/${roomId}/messages`, { content: `rest ${k}` });
      } catch (e) {
        stats.restOther.push(`request failed: ${e.message}`);
        await sleep(50);
        continue;
      }
      stats.slowest = Math.max(stats.slowest, Date.now() - t1);
      if (res.status === 201) stats.rest201.push(res.body);
      else if (res.status === 503 && res.body?.error?.code === 'unavailable') {
        stats.rest503++;
        const ra = res.headers.get('retry-after');
        if (!ra || !/^\d+$/.test(ra)) stats.retryAfterMissing++;
        await sleep(20); // a client that backs off a little (less than Retry-After: still above the rate)
      } else {
        if (stats.restOther.length < 5) stats.restOther.push(`${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        await sleep(20);
      }
    }
  };
  let w = 0;
  const wsClosed = new Promise((resolve) => wsConn.ws.once('close', resolve));
  const wsLoop = async () => {
    while (Date.now() < until && wsConn.close === null) {
      const cmid = `ov-${w++}`;
      const answer = new Promise((resolve) => { wsAnswers.set(cmid, resolve); wsOrder.push(cmid); });
      wsConn.ws.send(JSON.stringify({ type: 'send_message', data: { room_id: roomId, content: `ws ${cmid}`, client_msg_id: cmid } }));
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), 20000); });
      const ev = await Promise.race([answer, timeout, wsClosed.then(() => 'closed')]);
      clearTimeout(timer);
      if (ev === 'closed') return;
      if (ev === null) { wsOutcome.other.push(`no answer to ${cmid} within 20 s`); return; }
      if (ev.type === 'ack' && ev.data?.client_msg_id === cmid && ev.data.message) wsOutcome.ack.push(ev.data.message);
      else if (ev.type === 'error' && ev.data?.code === 'overloaded' && ev.data.client_msg_id === cmid) { wsOutcome.overloaded++; await sleep(20); } else {
        if (wsOutcome.other.length < 5) wsOutcome.other.push(JSON.stringify(ev).slice(0, 200));
        await sleep(20);
      }
    }
  };
  await Promise.all([...Array.from({ length: REST_CONCURRENCY }, restLoop), ...Array.from({ length: WS_WINDOW }, wsLoop)]);
  const sendMs = Date.now() - tSend;

  // ---- drain: every reader reaches the room's last seq ----
  const info = await restSender.api.get(`/api/chatrooms/${roomId}`);
  assertStatus(info, 200, 'room after the senders');
  const L = info.body.last_seq;
  // What each socket is due: every stored message, but the WebSocket sender's own.
  const ownWs = new Set(wsOutcome.ack.map((m) => m.seq));
  let lastForWs = L;
  while (ownWs.has(lastForWs)) lastForWs--;
  const due = (r) => (r === wsConn ? { count: L - ownWs.size, last: lastForWs } : { count: L, last: L });
  const done = (r) => r.close || (r.count >= due(r).count && r.last >= due(r).last);
  const tDrain = Date.now();
  while (Date.now() - tDrain < DRAIN_MS) {
    if (readers.every(done)) break;
    await sleep(100);
  }
  const drainMs = Date.now() - tDrain;
  await sleep(300); // anything beyond last_seq (a duplicate) would arrive now

  const acked = [...stats.rest201, ...wsOutcome.ack];
  const delivered = readers.map((r) => r.last);
  const closed = readers.filter((r) => r.close);
  t.diagnostic(`users+room ${tUsers} ms, ${readers.length} sockets open in ${tOpen} ms; sent for ${sendMs} ms: ` +
    `REST 201 ${stats.rest201.length}, 503 ${stats.rest503}, other ${stats.restOther.length}; WS ack ${wsOutcome.ack.length}, ` +
    `overloaded ${wsOutcome.overloaded}, other ${wsOutcome.other.length}; slowest REST answer ${stats.slowest} ms; ` +
    `last_seq ${L} (${(L / (sendMs / 1000)).toFixed(0)} msg/s, ${((L * readers.length) / ((sendMs + drainMs) / 1000)).toFixed(0)} deliveries/s); ` +
    `drained in ${drainMs} ms; readers closed ${closed.length}; lowest reader seq ${Math.min(...delivered)}`);

  // 1. No reader was closed.
  assert.deepEqual(closed.slice(0, 5).map((r) => `${r.label}: ${JSON.stringify(r.close)} at seq ${r.last} of ${L}`), [],
    `${closed.length} of ${readers.length} reading sockets were closed (a reader that keeps reading is never closed)`);
  // 2. Refusals only at the entrance, in the contract's form.
  assert.deepEqual(stats.restOther, [], 'REST sends: only 201 or 503 unavailable');
  assert.equal(stats.retryAfterMissing, 0, `every 503 carries Retry-After (${stats.retryAfterMissing} of ${stats.rest503} without)`);
  assert.ok(stats.rest201.length > 0, 'some REST sends were accepted');
  // 3. Stored = acknowledged, seqs 1..L.
  const stored = [];
  for (let after = 0; ;) {
    const r = await restSender.api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assertStatus(r, 200, 'history');
    stored.push(...r.body.messages);
    if (!r.body.has_more) break;
    after = r.body.messages.at(-1).seq;
  }
  assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: L }, (_, i) => i + 1), 'stored seqs are 1..last_seq');
  const ackedIds = new Set(acked.map((m) => m.id));
  const unacked = stored.filter((m) => !ackedIds.has(m.id));
  assert.deepEqual(unacked.slice(0, 5).map((m) => `#${m.seq} ${m.content}`), [], `${unacked.length} stored message(s) were refused or never answered`);
  assert.equal(stored.length, acked.length, 'every acknowledged send is stored, once');
  // 4. Every reader got every stored message exactly once, in order.
  const behind = readers.filter((r) => r.last !== due(r).last || r.count !== due(r).count);
  const withProblems = readers.filter((r) => r.problems.length);
  assert.deepEqual(withProblems.slice(0, 5).map((r) => `${r.label}: ${r.problems.join('; ')}`), [], 'readers: order');
  assert.deepEqual(behind.slice(0, 5).map((r) => `${r.label}: ${r.count} new_message, newest seq ${r.last}`), [],
    `${behind.length} reader(s) short of the ${L} stored messages after ${DRAIN_MS} ms`);
  const errs = readers.filter((r) => r.errors.length);
  assert.deepEqual(errs.slice(0, 3).map((r) => `${r.label}: ${r.errors[0]}`), [], 'no error frame on a reader');
  // 5. The WebSocket sender: only acks and `overloaded`.
  assert.deepEqual(wsOutcome.other, [], 'WebSocket sends: answered by ack or error overloaded (with the client_msg_id)');
  assert.ok(wsOutcome.ack.length > 0, 'some WebSocket sends were accepted');
});
