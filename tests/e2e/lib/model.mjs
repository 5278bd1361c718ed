// The model-based test of rooms, membership, messages and read state: the reference model and
// the randomized run against it (what it checks: tests/e2e/model.test.mjs). runModel drives one
// server (started here) or several given ones (`servers`: every user's REST calls alternate
// between them and their sidebars are spread over them, so that every check crosses instances).
import assert from 'node:assert/strict';
import { startServer, client, newUser } from './server.mjs';
import { TIME_RE, assertMessage, assertRoom, retryShed } from './rest-helpers.mjs';
import { SidebarSocket, sleep, waitUntil } from './model-sidebar.mjs';

export const DEFAULT_SEED = process.env.PARLEY_MODEL_SEED !== undefined && process.env.PARLEY_MODEL_SEED !== ''
  ? Number(process.env.PARLEY_MODEL_SEED) >>> 0 : 0x5eed2026;
const envNum = (name, dflt) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);
export const STEPS_FEW = envNum('PARLEY_MODEL_STEPS', 400);
export const USERS_FEW = Math.max(2, envNum('PARLEY_MODEL_USERS', 5));
export const USERS_MANY = envNum('PARLEY_MODEL_MANY_USERS', 1000);
export const STEPS_MANY = envNum('PARLEY_MODEL_MANY_STEPS', 60);
const SAMPLE = Math.max(1, envNum('PARLEY_MODEL_SAMPLE', 24));
const FULL_EVERY = Math.max(1, envNum('PARLEY_MODEL_FULL_EVERY', 10));
const WS_EVERY = Math.max(1, envNum('PARLEY_MODEL_WS_EVERY', 1));
const WS_SEND_SHARE = Math.min(1, Math.max(0, envNum('PARLEY_MODEL_WS_SEND_SHARE', 0.5)));
const REACTION_SHARE = Math.min(1, Math.max(0, envNum('PARLEY_MODEL_REACTION_SHARE', 0.25))); // steps followed by a reaction call
const SETTLE_MS = 3000;
const N_GROUPS = 3;
const WS_ANSWER_MS = 5000; // how long a WS send may wait for its ack or error
// The inbound limit is not under test here (ws_send.test.mjs): high enough for every burst.
export const MODEL_SERVER_ARGS = ['--ws-cooldown-ms', '0', '--ws-inbound-per-sec', '10000', '--ws-inbound-burst', '10000'];

// mulberry32: small, fast, good enough for test input.
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
  };
}

const show = (res) => `${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`;
const sortedIds = (xs) => [...xs].map(String).sort();

// ---------------------------------------------------------------------------------------
// The reference model.
export class Model {
  constructor() {
    this.rooms = new Map(); // id → {id, type, createdBy, members:Set, msgs:[], wm:Map, dlv:Map, cmids:Map}
    this.msgs = new Map(); // id → {id, roomId, seq, sender, content, cmid, createdAt, recipients}
    this.order = []; // every message, in the order the model learnt of them
  }

  addRoom(id, type, createdBy, memberIds) {
    const room = { id, type, createdBy, members: new Set(memberIds), msgs: [], wm: new Map(), dlv: new Map(), cmids: new Map() };
    for (const u of memberIds) room.wm.set(u, 0);
    this.rooms.set(id, room);
    return room;
  }

  isMember(roomId, u) { return this.rooms.get(roomId).members.has(u); }
  wm(roomId, u) { return this.rooms.get(roomId).wm.get(u) ?? 0; }
  lastSeq(roomId) { return this.rooms.get(roomId).msgs.length; }
  // The delivered watermark: the highest `delivered` (clamped when it came), raised by the
  // read watermark (a read implies delivered; sends and joins move the read one too).
  dwm(roomId, u) { return Math.max(this.rooms.get(roomId).dlv.get(u) ?? 0, this.wm(roomId, u)); }
  delivered(roomId, u, upTo) {
    const room = this.rooms.get(roomId);
    room.dlv.set(u, Math.max(room.dlv.get(u) ?? 0, Math.min(upTo, room.msgs.length)));
  }
  roomsOf(u) { return [...this.rooms.values()].filter((r) => r.members.has(u)); }
  // Reactions: per message, emoji → the users who reacted with it, in the order they did. An
  // add that is there already, or a remove that is not, changes nothing (returns false).
  react(msgId, u, emoji, add) {
    const m = this.msgs.get(msgId);
    const users = m.reactions[emoji] ?? [];
    if (users.includes(u) === add) return false;
    const next = add ? [...users, u] : users.filter((x) => x !== u);
    if (next.length) m.reactions[emoji] = next; else delete m.reactions[emoji];
    return true;
  }

  // The contract's rule, literally: messages above the watermark not sent by the user.
  unread(roomId, u) {
    const w = this.wm(roomId, u);
    let n = 0;
    for (const m of this.rooms.get(roomId).msgs) if (m.seq > w && m.sender !== u) n++;
    return n;
  }

  firstUnread(roomId, u) {
    const w = this.wm(roomId, u);
    return this.rooms.get(roomId).msgs.find((m) => m.seq > w && m.sender !== u) ?? null;
  }

  send(roomId, u, body, cmid) {
    const room = this.rooms.get(roomId);
    const m = { id: body.id, roomId, seq: body.seq, sender: u, content: body.content, cmid, createdAt: body.created_at, reactions: {} };
    // Who gets it as `new_message`: the members at the send but the sender (membership never
    // changes during an operation that sends, bursts included).
    m.recipients = new Set([...room.members].filter((x) => x !== u));
    room.msgs.push(m);
    this.msgs.set(m.id, m);
    this.order.push(m);
    room.wm.set(u, m.seq); // a send moves the sender's watermark to the sent message
    if (cmid !== undefined) room.cmids.set(`${u}|${cmid}`, m);
    return m;
  }

  read(roomId, u, seq) {
    const room = this.rooms.get(roomId);
    room.wm.set(u, Math.max(this.wm(roomId, u), seq));
  }

  join(roomId, u) {
    const room = this.rooms.get(roomId);
    if (room.members.has(u)) return; // adding a present member changes nothing
    room.members.add(u);
    room.wm.set(u, Math.max(room.wm.get(u) ?? 0, room.msgs.length));
  }

  leave(roomId, u) {
    this.rooms.get(roomId).members.delete(u); // the old watermark is kept for a re-join
  }
}

// ---------------------------------------------------------------------------------------

// caseName: 'few' or 'many' (named in failures); nUsers, steps: the size of the run.
// servers: the instances to spread the users over (started and closed here when not given).
// seed: the run's seed (default PARLEY_MODEL_SEED or fixed); reproduce: how to run it again (for failures).
// outage: {from, to, begin(), end()} — begin() runs before step `from`, end() after step `to`;
//   in between the REST checks go on but the sockets' are held back, and the first sidebar
//   check after end() must find everything (a bus outage: events are caught up afterwards).
export async function runModel(t, { caseName, nUsers: N_USERS, steps: STEPS, servers: given, seed: SEED = DEFAULT_SEED, outage = null, reproduce }) {
  const rnd = prng(SEED);
  // Many users: per-step REST checks of a sample (its own stream; the operations stay as they were).
  const MANY = N_USERS > 20;
  const checkRnd = prng((SEED ^ 0x85ebca6b) >>> 0);
  // REST or WebSocket for a send, and which socket (its own stream, as above).
  const viaRnd = prng((SEED ^ 0xc2b2ae35) >>> 0);
  let servers = given;
  if (!servers) {
    const server = await startServer({ args: MODEL_SERVER_ARGS });
    t.after(() => server.close());
    servers = [server];
  }
  // Which instance: users and sidebars are numbered round the servers.
  const srvName = (srv) => (servers.length === 1 ? '' : ` on ${String.fromCharCode(65 + servers.indexOf(srv))}`);
  // A REST client whose calls alternate between the servers (one server: a plain client).
  function spreadClient(token, start) {
    if (servers.length === 1) return client(servers[0].url, token);
    const per = servers.map((srv) => client(srv.url, token));
    let k = start;
    const pick = () => per[k++ % per.length];
    return {
      get: (...a) => pick().get(...a), post: (...a) => pick().post(...a), put: (...a) => pick().put(...a),
      del: (...a) => pick().del(...a), req: (...a) => pick().req(...a),
    };
  }

  const users = [];
  const tReg = Date.now();
  {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(N_USERS, 8) }, async () => {
      while (next < N_USERS) {
        const i = next++;
        const u = await newUser(servers[i % servers.length], `mdl${i}_`);
        users[i] = { ...u, api: spreadClient(u.token, i), id: u.user.id, label: `U${i}`, index: i };
      }
    }));
  }
  const regMs = Date.now() - tReg;
  // A few users have a second sidebar (a second device): they see their own messages echoed.
  const N_TWO_SIDEBARS = Math.min(N_USERS, 3 + Math.floor(N_USERS / 100));
  const byId = new Map(users.map((u) => [u.id, u]));
  const label = (id) => byId.get(id)?.label ?? id;
  const model = new Model();
  const roomLabels = new Map();
  const rlabel = (id) => roomLabels.get(id) ?? id;

  // ---- sidebar WebSockets: one per user (two for a few), open for the whole run ----
  const wsRnd = prng((SEED ^ 0x9e3779b9) >>> 0); // its own stream: a seed's REST operations stay as they were
  let curStep = 0;
  const wsProblems = []; // what the frame handlers saw wrong, checked at the next sidebar check
  const wsStats = { frames: {}, reconnects: 0, snapshotRooms: 0, finalExactLastSeq: 0, finalOwnTail: 0, echoes: 0, wsSends: 0, restSends: 0 };
  // Per user: every connection ever opened, and the open ones. Per connection (conn.st): what
  // has arrived on it, and the messages it is still due.
  const sb = new Map(users.map((u) => [u.id, { conns: [], live: [] }]));
  const problem = (u, text) => wsProblems.push(`step ${curStep}: ${u.label} sidebar: ${text}`);
  const isCount = (x) => Number.isInteger(x) && x >= 0;
  const liveConns = () => users.flatMap((u) => sb.get(u.id).live);

  function newConnState() {
    return {
      lastUpd: new Map(), // room → the last unread_count_update to arrive
      kept: new Map(), // room → the newest one: highest last_seq, then lowest unread_count
      lastNewSeq: new Map(), // room → highest new_message seq so far
      gotIds: new Set(), // ids of every new_message received
      pending: new Map(), // id → message due on this connection and not arrived yet
      toValidate: [], // new_message events not yet compared with the model
      reads: [], // message_read events not yet checked
      delivs: [], // message_delivered events not yet checked
      lastDeliv: new Map(), // `${room}|${user}` → the highest up_to_seq of message_delivered so far
      reactDue: new Map(), // `${message}|${user}|${emoji}|${action}` → how many such `reaction` events are still due
      acks: [], // heartbeat_ack waiters (fences)
      waiters: [], // WS sends awaiting their ack or error: {cmid, resolve}
    };
  }

  function onFrame(u, conn, type, d) {
    const s = conn.st;
    wsStats.frames[type] = (wsStats.frames[type] ?? 0) + 1;
    if (type === 'unread_count_update') {
      const shown = `${rlabel(d.room_id)} ${JSON.stringify(d)}`;
      if (typeof d.room_id !== 'string' || !isCount(d.unread_count) || !isCount(d.last_seq) ||
          !isCount(d.total_unread) || d.total_unread < d.unread_count || d.unread_count > d.last_seq) {
        problem(u, `conn #${conn.n}${conn.srv}: malformed unread_count_update ${shown}`);
        return;
      }
      const rec = { ...d, step: curStep, conn: conn.n };
      const prev = s.lastUpd.get(d.room_id);
      if (prev && (d.last_seq < prev.last_seq || (d.last_seq === prev.last_seq && d.unread_count > prev.unread_count))) {
        problem(u, `conn #${conn.n}${conn.srv}: unread_count_update for ${rlabel(d.room_id)} went backwards: (last_seq ${prev.last_seq}, unread ${prev.unread_count}; ` +
          `step ${prev.step}) then (last_seq ${d.last_seq}, unread ${d.unread_count})`);
      }
      s.lastUpd.set(d.room_id, rec);
      const k = s.kept.get(d.room_id);
      if (!k || d.last_seq > k.last_seq || (d.last_seq === k.last_seq && d.unread_count < k.unread_count)) s.kept.set(d.room_id, rec);
    } else if (type === 'new_message') {
      const own = d.sender_id === u.id;
      const shown = `new_message ${rlabel(d.room_id)}#${d.seq} from ${label(d.sender_id)}${d.echo === true ? ' (echo)' : ''} (conn #${conn.n}${conn.srv})`;
      if (own && d.echo !== true) problem(u, `${shown}: its own message without "echo":true`);
      if (!own && 'echo' in d && d.echo !== false) problem(u, `${shown}: another member's message with echo ${JSON.stringify(d.echo)}`);
      if (own) wsStats.echoes++;
      if (typeof d.reactions !== 'object' || d.reactions === null || Array.isArray(d.reactions)) problem(u, `${shown}: no reactions map`);
      const prevSeq = s.lastNewSeq.get(d.room_id);
      if (prevSeq !== undefined && !(d.seq > prevSeq)) problem(u, `${shown} after #${prevSeq}: seqs not strictly increasing`);
      if (s.gotIds.has(d.id)) problem(u, `${shown}: a duplicate (id ${d.id})`);
      s.lastNewSeq.set(d.room_id, Math.max(prevSeq ?? 0, d.seq));
      s.gotIds.add(d.id);
      s.pending.delete(d.id);
      s.toValidate.push({ d, step: curStep, conn: conn.n });
    } else if (type === 'message_read') {
      s.reads.push({ d, step: curStep, conn: conn.n });
    } else if (type === 'message_delivered') {
      const key = `${d.room_id}|${d.user_id}`;
      const prev = s.lastDeliv.get(key);
      if (prev !== undefined && !(d.up_to_seq > prev)) {
        problem(u, `conn #${conn.n}: message_delivered ${rlabel(d.room_id)} of ${label(d.user_id)} up_to_seq ${d.up_to_seq} after ${prev}: not a move forward`);
      }
      if (!TIME_RE.test(d.delivered_at ?? '')) problem(u, `conn #${conn.n}: message_delivered without a delivered_at: ${JSON.stringify(d)}`);
      s.lastDeliv.set(key, Math.max(prev ?? 0, d.up_to_seq));
      s.delivs.push({ d, step: curStep, conn: conn.n });
    } else if (type === 'reaction') {
      const key = `${d.message_id}|${d.user_id}|${d.emoji}|${d.action}`;
      const m = model.msgs.get(d.message_id);
      const shown = `reaction ${JSON.stringify(d)} (conn #${conn.n}${conn.srv})`;
      if (Object.keys(d).sort().join() !== 'action,emoji,message_id,room_id,user_id' || !m || m.roomId !== d.room_id) problem(u, `${shown}: malformed or of no such message`);
      const due = s.reactDue.get(key) ?? 0;
      if (due === 0) problem(u, `${shown}: not due here (a no-op's, a duplicate, or for a non-member)`);
      else if (due === 1) s.reactDue.delete(key);
      else s.reactDue.set(key, due - 1);
    } else if (type === 'heartbeat_ack') {
      const w = s.acks.shift();
      if (w) w();
    } else if (type === 'ack' || type === 'error') {
      // The answer to a WS send on this connection: by client_msg_id, or (an error that names
      // none) the oldest one waiting, so that a wrong answer fails that send at once.
      const cmid = d && typeof d === 'object' ? d.client_msg_id : undefined;
      let i = s.waiters.findIndex((w) => w.cmid === cmid);
      if (i < 0 && type === 'error' && cmid === undefined && s.waiters.length) i = 0;
      if (i < 0) { problem(u, `conn #${conn.n}${conn.srv}: ${type} ${JSON.stringify(d)} answers no send of this connection`); return; }
      s.waiters.splice(i, 1)[0].resolve({ type, data: d });
    } // anything else (presence, …) is not this test's business
  }

  // Sends `send_message` on conn and resolves with its answer ({type: 'ack'|'error', data}).
  function wsSend(conn, data) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = conn.st.waiters.indexOf(w);
        if (i >= 0) conn.st.waiters.splice(i, 1);
        reject(new Error(`no ack or error for send_message ${JSON.stringify(data).slice(0, 200)} on conn #${conn.n}${conn.srv} within ${WS_ANSWER_MS} ms`));
      }, WS_ANSWER_MS);
      const w = { cmid: data.client_msg_id, resolve: (ev) => { clearTimeout(timer); resolve(ev); } };
      conn.st.waiters.push(w);
      conn.ws.send(JSON.stringify({ type: 'send_message', data }));
    });
  }

  // Records a stored message in the model and on which open connections it is due: every
  // connection of every other member (plain), and every connection of the sender except the
  // one it was sent on (`via`, null for REST) as an echo.
  function recordSend(roomId, senderId, body, cmid, via) {
    const m = model.send(roomId, senderId, body, cmid);
    m.due = new Map(); // conn.n → {echo}
    for (const uid of [...m.recipients, senderId]) {
      for (const conn of sb.get(uid).live) {
        if (conn === via) continue;
        m.due.set(conn.n, { echo: uid === senderId });
        if (!conn.st.gotIds.has(m.id)) conn.st.pending.set(m.id, m);
      }
    }
    m.via = via ? `WS conn #${via.n}` : 'REST';
    if (via) wsStats.wsSends++; else wsStats.restSends++;
    return m;
  }

  // Compares the events received so far with the model (which is complete once every
  // operation issued so far has answered).
  function validateReceived(u) {
    for (const conn of sb.get(u.id).conns) {
      const s = conn.st;
      for (const { d, step } of s.toValidate.splice(0)) {
        const m = model.msgs.get(d.id);
        const shown = `new_message ${rlabel(d.room_id)}#${d.seq} id ${d.id}${d.echo === true ? ' (echo)' : ''} (conn #${conn.n}${conn.srv}, arrived in step ${step})`;
        if (!m) { problem(u, `${shown}: no such message was sent`); continue; }
        if (m.roomId !== d.room_id || m.seq !== d.seq || m.sender !== d.sender_id || m.content !== d.content) {
          problem(u, `${shown}: fields differ from the message sent (${rlabel(m.roomId)}#${m.seq} by ${label(m.sender)}, ${JSON.stringify(m.content)})`);
        }
        if (!m.due.has(conn.n)) {
          if (m.sender === u.id) problem(u, `${shown}: sent on this very connection (${m.via}); the sending connection gets only the ack`);
          else {
            const everIn = model.rooms.get(m.roomId).wm.has(u.id);
            problem(u, `${shown}: ${u.label} was not a member of ${rlabel(m.roomId)} when it was sent${everIn ? '' : ' (nor ever)'}`);
          }
        }
      }
      for (const { d, step } of s.reads.splice(0)) {
        const room = model.rooms.get(d.room_id);
        const shown = `message_read ${rlabel(d.room_id)} by ${label(d.reader_id)} up_to_seq ${d.up_to_seq} (conn #${conn.n}${conn.srv}, arrived in step ${step})`;
        if (!room || !room.wm.has(u.id)) problem(u, `${shown}: a room ${u.label} has never been in`);
        else if (!isCount(d.up_to_seq) || d.up_to_seq > room.msgs.length) problem(u, `${shown}: beyond last_seq ${room.msgs.length}`);
        else if (!byId.has(d.reader_id) || !room.wm.has(d.reader_id)) problem(u, `${shown}: the reader has never been in the room`);
      }
      for (const { d, step } of s.delivs.splice(0)) {
        const room = model.rooms.get(d.room_id);
        const shown = `message_delivered ${rlabel(d.room_id)} of ${label(d.user_id)} up_to_seq ${d.up_to_seq} (conn #${conn.n}, arrived in step ${step})`;
        if (!room || !room.wm.has(u.id)) problem(u, `${shown}: a room ${u.label} has never been in`);
        else if (!byId.has(d.user_id) || !room.wm.has(d.user_id)) problem(u, `${shown}: that user has never been in the room`);
        else if (!Number.isInteger(d.up_to_seq) || d.up_to_seq < 1 || d.up_to_seq > room.msgs.length) problem(u, `${shown}: not within 1..last_seq ${room.msgs.length}`);
        else if (d.up_to_seq > model.dwm(d.room_id, d.user_id)) problem(u, `${shown}: above the model's delivered watermark ${model.dwm(d.room_id, d.user_id)}`);
      }
    }
  }

  // Cheap: has every open connection got every message due to it?
  const allDelivered = () => liveConns().every((c) => c.st.pending.size === 0 && c.st.reactDue.size === 0);

  // What differs between a user's open sidebars and the model (empty once everything has arrived).
  function sidebarMismatches(u) {
    const out = [];
    for (const conn of sb.get(u.id).live) {
      const s = conn.st;
      const missing = [...s.pending.values()].sort((x, y) => x.seq - y.seq);
      if (missing.length) {
        out.push(`conn #${conn.n}${conn.srv}: new_message missing for ${missing.slice(0, 6).map((m) => `${rlabel(m.roomId)}#${m.seq} (from ${label(m.sender)} over ${m.via}` +
          `${m.sender === u.id ? ', an echo' : ''})`).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}`);
      }
      if (s.reactDue.size) out.push(`conn #${conn.n}${conn.srv}: reaction missing: ${[...s.reactDue.keys()].slice(0, 6).join(', ')}`);
      for (const r of model.roomsOf(u.id)) {
        const k = s.kept.get(r.id);
        const exp = model.unread(r.id, u.id);
        const L = r.msgs.length;
        if (!k) { out.push(`conn #${conn.n}${conn.srv} ${rlabel(r.id)}: no unread_count_update received (model: unread ${exp}, last_seq ${L})`); continue; }
        if (k.unread_count === exp && k.last_seq === L) continue; // the common case, without scanning the messages
        const foreign = r.msgs.filter((m) => m.seq > k.last_seq && m.sender !== u.id);
        if (k.unread_count !== exp || k.last_seq > L || foreign.length) {
          out.push(`conn #${conn.n}${conn.srv} ${rlabel(r.id)}: newest unread_count_update has unread ${k.unread_count}, last_seq ${k.last_seq} ` +
            `(arrived in step ${k.step}); model: unread ${exp} (wm ${model.wm(r.id, u.id)}), last_seq ${L}` +
            `${foreign.length ? `; messages from others above it: ${foreign.map((m) => `#${m.seq}`).join(',')}` : ''}`);
        }
      }
    }
    return out;
  }

  async function checkSidebars() {
    await waitUntil(() => allDelivered() && users.every((u) => sidebarMismatches(u).length === 0), SETTLE_MS, MANY ? 20 : 5);
    for (const u of users) validateReceived(u);
    if (wsProblems.length) {
      assert.fail(`sidebar: ${wsProblems.length} problem(s):\n    ${wsProblems.slice(0, 12).join('\n    ')}`);
    }
    const bad = users.flatMap((u) => sidebarMismatches(u).map((x) => `${u.label}: ${x}`));
    if (bad.length) {
      assert.fail(`sidebar not in line with the model after ${SETTLE_MS} ms (${bad.length} finding(s)):\n    ${bad.slice(0, 20).join('\n    ')}`);
    }
  }

  async function openSidebar(u) {
    const s = sb.get(u.id);
    // The user's first sidebar on its "home" instance, the next (a second device, a reconnect)
    // on the next one.
    const srv = servers[(u.index + s.conns.length) % servers.length];
    const conn = new SidebarSocket(srv.url, u, {
      onFrame: (c, type, d) => onFrame(u, c, type, d),
      onProblem: (c, text) => problem(u, `conn #${c.n}: ${text}`),
    });
    conn.st = newConnState();
    conn.srv = srvName(srv);
    s.conns.push(conn);
    await conn.open();
    s.live.push(conn);
    return conn;
  }

  // Closes one of u's sidebars and opens a new one; the snapshot must match the model exactly
  // (no operation is in flight). Everything due on the old connection has arrived first.
  async function reconnectSidebar(u, which) {
    await checkSidebars();
    const s = sb.get(u.id);
    const old = s.live[which % s.live.length];
    s.live.splice(s.live.indexOf(old), 1);
    await old.close();
    const conn = await openSidebar(u);
    const mine = model.roomsOf(u.id);
    const updates = () => conn.frames.filter((f) => f.type === 'unread_count_update');
    await waitUntil(() => updates().length >= mine.length, SETTLE_MS);
    await sleep(50); // a snapshot with more rooms than the model would show here
    const what = `${u.label} sidebar snapshot after reconnect (conn #${conn.n}${conn.srv}, replacing #${old.n})`;
    const first = conn.frames.slice(0, mine.length).map((f) => f.type);
    assert.ok(first.every((x) => x === 'unread_count_update'),
      `${what}: the first ${mine.length} frames after connected are [${first}], not the snapshot's updates`);
    const total = mine.reduce((n, r) => n + model.unread(r.id, u.id), 0);
    const pretty = (xs) => xs.map((x) => `${rlabel(x.room_id)}: unread ${x.unread_count} total ${x.total_unread} last_seq ${x.last_seq}`).join('; ');
    const byRoom = (a, b) => (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0);
    const got = updates().map((f) => ({ room_id: f.data.room_id, unread_count: f.data.unread_count, total_unread: f.data.total_unread, last_seq: f.data.last_seq })).sort(byRoom);
    const exp = mine.map((r) => ({ room_id: r.id, unread_count: model.unread(r.id, u.id), total_unread: total, last_seq: r.msgs.length })).sort(byRoom);
    assert.deepEqual(got, exp, `${what}:\n      got   ${pretty(got)}\n      model ${pretty(exp)}`);
    // Every new_message due to u had arrived on the old connection (a late message_read of the
    // last step may still come: its arrival is not awaited, so it is not counted here).
    const stray = conn.frames.filter((f) => f.type === 'new_message');
    assert.equal(stray.length, 0, `${what}: new_message with no operation in flight: ${JSON.stringify(stray).slice(0, 300)}`);
    wsStats.reconnects++;
    wsStats.snapshotRooms += mine.length;
  }

  t.after(() => { for (const s of sb.values()) for (const c of s.conns) c.terminate(); });
  for (let i = 0; i < users.length; i += 100) {
    await Promise.all(users.slice(i, i + 100).map((u) => openSidebar(u)));
  }
  for (const u of users.slice(0, N_TWO_SIDEBARS)) await openSidebar(u);

  // ---- setup: group rooms with random members, and a direct room ----
  // With many users, the first group holds everyone and the others about 5 % of them.
  for (let g = 0; g < N_GROUPS; g++) {
    const creator = rnd.pick(users);
    const p = !MANY ? 0.5 : g === 0 ? 1 : 0.05;
    let others = users.filter((u) => u !== creator && (p === 1 || rnd.chance(p))).map((u) => u.id);
    if (others.length === 0) others = [rnd.pick(users.filter((u) => u !== creator)).id];
    const res = await creator.api.post('/api/chatrooms', { name: `group ${g}`, member_ids: others });
    assert.equal(res.status, 201, `create group ${g}: ${show(res)}`);
    assertRoom(res.body, { type: 'group', created_by: creator.id, last_seq: 0, unread_count: 0, last_message: null });
    assert.deepEqual(sortedIds(res.body.members.map((m) => m.id)), sortedIds([creator.id, ...others]), 'group members');
    model.addRoom(res.body.id, 'group', creator.id, [creator.id, ...others]);
    roomLabels.set(res.body.id, `G${g}`);
  }
  {
    const [a, b] = [users[0], users[1 + rnd.int(N_USERS - 1)]];
    const res = await a.api.post('/api/chatrooms', { type: 'direct', member_ids: [b.id] });
    assert.equal(res.status, 201, `create direct: ${show(res)}`);
    assertRoom(res.body, { type: 'direct', last_seq: 0, unread_count: 0, last_message: null });
    assert.deepEqual(sortedIds(res.body.members.map((m) => m.id)), sortedIds([a.id, b.id]), 'direct members');
    const again = await b.api.post('/api/chatrooms', { type: 'direct', member_ids: [a.id] });
    assert.ok(again.status === 200 || again.status === 201, `re-create direct: ${show(again)}`);
    assert.equal(again.body.id, res.body.id, 're-creating a direct room returns the existing one');
    model.addRoom(res.body.id, 'direct', a.id, [a.id, b.id]);
    roomLabels.set(res.body.id, 'D');
  }
  const roomIds = [...model.rooms.keys()];

  // ---- checks ----
  const readAtSeen = new Map(); // `${msgId}|${userId}` → read_at first observed
  const deliveredAtSeen = new Map(); // `${msgId}|${userId}` → delivered_at first observed

  async function checkUnreadCounts(u) {
    const res = await u.api.get('/api/messages/unread-counts');
    assert.equal(res.status, 200, `${u.label} unread-counts: ${show(res)}`);
    const expected = {};
    let total = 0;
    for (const r of model.roomsOf(u.id)) { expected[r.id] = model.unread(r.id, u.id); total += expected[r.id]; }
    const pretty = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).map(([k, v]) => [rlabel(k), v])));
    assert.deepEqual(res.body.unread_counts, expected,
      `${u.label} unread_counts: got ${pretty(res.body.unread_counts ?? {})}, model ${pretty(expected)}`);
    assert.equal(res.body.total, total, `${u.label} unread total`);
  }

  async function checkFirstUnread(u, roomId) {
    const res = await u.api.get(`/api/chatrooms/${roomId}/first-unread`);
    const what = `${u.label} first-unread ${rlabel(roomId)} (wm ${model.wm(roomId, u.id)}, last_seq ${model.lastSeq(roomId)})`;
    if (!model.isMember(roomId, u.id)) { assert.equal(res.status, 403, `${what} as non-member: ${show(res)}`); return; }
    assert.equal(res.status, 200, `${what}: ${show(res)}`);
    const exp = model.firstUnread(roomId, u.id);
    assert.equal(res.body.unread_count, model.unread(roomId, u.id), `${what}: unread_count`);
    if (exp === null) {
      assert.equal(res.body.message, null, `${what}: expected message null, got ${JSON.stringify(res.body.message)}`);
    } else {
      assert.ok(res.body.message, `${what}: expected message seq ${exp.seq}, got ${JSON.stringify(res.body.message)}`);
      assertMessage(res.body.message, { id: exp.id, seq: exp.seq, room_id: roomId, sender_id: exp.sender });
    }
  }

  async function checkReadByWho(asker, m) {
    const res = await asker.api.get(`/api/messages/${m.id}/read-by-who`);
    const room = model.rooms.get(m.roomId);
    const what = `${asker.label} read-by-who ${rlabel(m.roomId)}#${m.seq} (sender ${label(m.sender)})`;
    if (!room.members.has(asker.id)) { assert.equal(res.status, 403, `${what} as non-member: ${show(res)}`); return; }
    assert.equal(res.status, 200, `${what}: ${show(res)}`);
    const others = [...room.members].filter((x) => x !== m.sender);
    const readBy = others.filter((x) => model.wm(m.roomId, x) >= m.seq);
    const unreadBy = others.filter((x) => model.wm(m.roomId, x) < m.seq);
    const deliveredTo = others.filter((x) => model.dwm(m.roomId, x) >= m.seq);
    const b = res.body;
    assert.equal(b.message_id, m.id, `${what}: message_id`);
    assert.equal(b.room_id, m.roomId, `${what}: room_id`);
    const gotRead = (b.read_by ?? []).map((x) => x.user_id);
    const gotUnread = (b.unread_by ?? []).map((x) => x.user_id);
    const lbl = (xs) => sortedIds(xs).map(label).join(',');
    assert.deepEqual(sortedIds(gotRead), sortedIds(readBy),
      `${what}: read_by got [${lbl(gotRead)}], model [${lbl(readBy)}]`);
    assert.deepEqual(sortedIds(gotUnread), sortedIds(unreadBy),
      `${what}: unread_by got [${lbl(gotUnread)}], model [${lbl(unreadBy)}]`);
    assert.equal(b.read_count, readBy.length, `${what}: read_count`);
    assert.equal(b.member_count, others.length, `${what}: member_count`);
    for (const x of [...b.read_by, ...b.unread_by]) {
      assert.equal(x.username, byId.get(x.user_id).user.username, `${what}: username of ${label(x.user_id)}`);
    }
    assert.ok(Array.isArray(b.delivered_to), `${what}: delivered_to ${show(res)}`);
    const gotDelivered = b.delivered_to.map((x) => x.user_id);
    assert.deepEqual(sortedIds(gotDelivered), sortedIds(deliveredTo),
      `${what}: delivered_to got [${lbl(gotDelivered)}], model [${lbl(deliveredTo)}]`);
    const readAtOf = new Map(b.read_by.map((x) => [x.user_id, x.read_at]));
    for (const x of b.delivered_to) {
      assert.equal(x.username, byId.get(x.user_id).user.username, `${what}: delivered_to username of ${label(x.user_id)}`);
      assert.match(x.delivered_at, TIME_RE, `${what}: delivered_at of ${label(x.user_id)}`);
      assert.ok(x.delivered_at >= m.createdAt, `${what}: delivered_at ${x.delivered_at} of ${label(x.user_id)} before created_at ${m.createdAt}`);
      const readAt = readAtOf.get(x.user_id);
      if (readAt !== undefined) assert.ok(x.delivered_at <= readAt, `${what}: delivered_at ${x.delivered_at} of ${label(x.user_id)} after its read_at ${readAt}`);
      const key = `${m.id}|${x.user_id}`;
      const seen = deliveredAtSeen.get(key);
      if (seen === undefined) deliveredAtSeen.set(key, x.delivered_at);
      else assert.equal(x.delivered_at, seen, `${what}: delivered_at of ${label(x.user_id)} changed`);
    }
    for (const x of b.read_by) {
      assert.match(x.read_at, TIME_RE, `${what}: read_at of ${label(x.user_id)}`);
      // read_at is when that reader's watermark first reached the message: never before the
      // message existed, and fixed once observed (decisions.md: the first move that reached it).
      assert.ok(x.read_at >= m.createdAt, `${what}: read_at ${x.read_at} of ${label(x.user_id)} before created_at ${m.createdAt}`);
      const key = `${m.id}|${x.user_id}`;
      const seen = readAtSeen.get(key);
      if (seen === undefined) readAtSeen.set(key, x.read_at);
      else assert.equal(x.read_at, seen, `${what}: read_at of ${label(x.user_id)} changed`);
    }
  }

  async function checkChatrooms(u) {
    const res = await u.api.get('/api/chatrooms');
    assert.equal(res.status, 200, `${u.label} chatrooms: ${show(res)}`);
    const list = res.body.chatrooms;
    const mine = model.roomsOf(u.id);
    assert.deepEqual(sortedIds(list.map((r) => r.id)), sortedIds(mine.map((r) => r.id)),
      `${u.label} chatrooms: got [${list.map((r) => rlabel(r.id))}], model [${mine.map((r) => rlabel(r.id))}]`);
    let prevActivity = null;
    for (const r of list) {
      const mr = model.rooms.get(r.id);
      const what = `${u.label} chatrooms ${rlabel(r.id)}`;
      assertRoom(r);
      assert.equal(r.type, mr.type, `${what}: type`);
      assert.equal(r.created_by, mr.createdBy, `${what}: created_by`);
      assert.equal(r.last_seq, mr.msgs.length, `${what}: last_seq`);
      assert.equal(r.unread_count, model.unread(r.id, u.id), `${what}: unread_count (wm ${model.wm(r.id, u.id)})`);
      assert.deepEqual(sortedIds(r.members.map((x) => x.id)), sortedIds(mr.members), `${what}: members`);
      const last = mr.msgs.at(-1) ?? null;
      assert.equal(r.last_message?.id ?? null, last?.id ?? null, `${what}: last_message`);
      // Newest activity first (time of newest message, or of creation without messages).
      const activity = r.last_message ? r.last_message.created_at : r.created_at;
      if (prevActivity !== null) assert.ok(activity <= prevActivity, `${u.label} chatrooms order: ${activity} after ${prevActivity}`);
      prevActivity = activity;
    }
  }

  async function checkLatest(u) {
    const res = await u.api.get('/api/messages/latest');
    assert.equal(res.status, 200, `${u.label} latest: ${show(res)}`);
    const got = new Map(res.body.latest.map((x) => [x.room_id, x.message?.id ?? null]));
    const exp = new Map(model.roomsOf(u.id).map((r) => [r.id, r.msgs.at(-1)?.id ?? null]));
    assert.deepEqual(got, exp, `${u.label} latest`);
  }

  // A random message and a member asking about it (sometimes a non-member).
  function randomMessageProbe() {
    const withMsgs = roomIds.filter((id) => model.rooms.get(id).msgs.length > 0);
    if (withMsgs.length === 0) return null;
    const room = model.rooms.get(rnd.pick(withMsgs));
    const m = rnd.pick(room.msgs);
    const members = users.filter((u) => room.members.has(u.id));
    const nonMembers = users.filter((u) => !room.members.has(u.id));
    const asker = nonMembers.length && rnd.chance(0.1) ? rnd.pick(nonMembers) : rnd.pick(members);
    return [asker, m];
  }

  // With many users: a random sample (the first users, who have two sidebars, always in it).
  function sample() {
    if (!MANY) return users;
    const out = new Set(users.slice(0, N_TWO_SIDEBARS));
    while (out.size < Math.min(users.length, N_TWO_SIDEBARS + SAMPLE)) out.add(users[checkRnd.int(users.length)]);
    return [...out];
  }

  // Runs the jobs at most `width` at a time.
  async function limited(jobs, width = 32) {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) await jobs[next++]();
    }));
  }

  async function checkStep(full) {
    const jobs = [];
    const some = sample();
    for (const u of some) {
      jobs.push(() => checkUnreadCounts(u));
      for (const r of model.roomsOf(u.id)) jobs.push(() => checkFirstUnread(u, r.id));
    }
    if (full && MANY) for (const u of users) if (!some.includes(u)) jobs.push(() => checkUnreadCounts(u));
    for (let i = 0; i < 2; i++) {
      const p = randomMessageProbe();
      if (p) jobs.push(() => checkReadByWho(...p));
    }
    if (full) {
      for (const u of some) {
        jobs.push(() => checkChatrooms(u), () => checkLatest(u));
        const outside = roomIds.filter((id) => !model.isMember(id, u.id));
        if (outside.length) {
          const r = (MANY ? checkRnd : rnd).pick(outside);
          jobs.push(() => checkFirstUnread(u, r));
        }
      }
    }
    await limited(jobs);
  }

  // ---- operations: each returns a description; performs the call, checks the answer, updates the model ----
  const outcomes = {};
  const outcome = (k) => { outcomes[k] = (outcomes[k] ?? 0) + 1; };
  // A send shed by a server that is behind stored nothing and is sent again (retryShed): the
  // model learns of it only once it is answered.
  const onShed = () => outcome('send shed by a busy server, sent again');
  let cmidCounter = 0;
  const usedCmids = [];
  const words = ['hello', 'héllo wörld', 'ok', 'see you', '👍 done', 'ünïcödé', 'lunch?', 'ship it', 'tab\there', 'line\nbreak'];

  // A room for u: usually one of theirs, sometimes any (a non-member probe).
  function roomFor(u, pMember = 0.88) {
    const mine = model.roomsOf(u.id).map((r) => r.id);
    if (mine.length && rnd.chance(pMember)) return rnd.pick(mine);
    return rnd.pick(roomIds);
  }
  function messagesVisibleTo(u) { return model.roomsOf(u.id).flatMap((r) => r.msgs); }
  function messagesHiddenFrom(u) {
    return [...model.rooms.values()].filter((r) => !r.members.has(u.id)).flatMap((r) => r.msgs);
  }

  const ops = {
    async send(step) {
      const u = rnd.pick(users);
      const roomId = roomFor(u);
      let cmid;
      const c = rnd.next();
      if (c < 0.35) cmid = undefined;
      else if (c < 0.75 || usedCmids.length === 0) { cmid = `c${cmidCounter++}-${SEED % 1000}`; usedCmids.push(cmid); }
      else cmid = rnd.pick(usedCmids); // a repeat: idempotent for the same sender and room only
      const content = `s${step} ${rnd.pick(words)}`;
      // Over WebSocket (on one of u's sockets) or REST; over WebSocket a client_msg_id is required.
      const via = viaRnd.chance(WS_SEND_SHARE) ? viaRnd.pick(sb.get(u.id).live) : null;
      if (via && cmid === undefined) cmid = `w${cmidCounter++}-${SEED % 1000}`; // fresh, never repeated
      const desc = `send ${u.label} → ${rlabel(roomId)} cmid=${cmid ?? '-'} over ${via ? `WS conn #${via.n}` : 'REST'}`;
      return [desc, async () => {
        const body = { content };
        if (cmid !== undefined) body.client_msg_id = cmid;
        let res;
        if (via) {
          const ev = await retryShed(() => wsSend(via, { room_id: roomId, ...body }), { onShed });
          const shown = JSON.stringify(ev).slice(0, 400);
          if (ev.type === 'ack') {
            assert.equal(ev.data.client_msg_id, cmid, `ack.client_msg_id: ${shown}`);
            res = { status: 'ack', body: ev.data.message };
          } else {
            assert.equal(ev.type, 'error', `answer to send_message: ${shown}`);
            assert.equal(ev.data.client_msg_id, cmid, `send_message answered by an error without its client_msg_id: ${shown}`);
            res = { status: `error ${ev.data.code}`, body: ev.data };
          }
        } else {
          res = await retryShed(() => u.api.post(`/api/chatrooms/${roomId}/messages`, body), { onShed });
        }
        const [ok201, ok200, refused] = via ? ['ack', 'ack', 'error forbidden'] : [201, 200, 403];
        const kind = via ? 'ws' : 'rest';
        if (!model.isMember(roomId, u.id)) { assert.equal(res.status, refused, `non-member send: ${show(res)}`); outcome(`send ${kind} ${refused}`); return; }
        const orig = cmid !== undefined ? model.rooms.get(roomId).cmids.get(`${u.id}|${cmid}`) : undefined;
        if (orig) {
          assert.equal(res.status, ok200, `repeated client_msg_id: expected ${ok200} with the original (seq ${orig.seq}, sent over ${orig.via}): ${show(res)}`);
          assertMessage(res.body, { id: orig.id, seq: orig.seq, content: orig.content, sender_id: u.id, room_id: roomId, client_msg_id: cmid });
          outcome(`send ${kind} idempotent (original over ${orig.via === 'REST' ? 'rest' : 'ws'})`);
          return;
        }
        assert.equal(res.status, ok201, `send: ${show(res)}`);
        const expected = { seq: model.lastSeq(roomId) + 1, content, sender_id: u.id, room_id: roomId };
        if (cmid !== undefined) expected.client_msg_id = cmid;
        assertMessage(res.body, expected);
        assert.ok(!model.msgs.has(res.body.id), `send: id ${res.body.id} reused`);
        recordSend(roomId, u.id, res.body, cmid, via);
        outcome(cmid !== undefined && usedCmids.indexOf(cmid) !== usedCmids.length - 1 && !cmid.startsWith('w')
          ? `send ${kind} new (cmid used elsewhere)` : `send ${kind} new`);
      }];
    },

    async readOne() {
      const u = rnd.pick(users);
      const visible = messagesVisibleTo(u);
      const hidden = messagesHiddenFrom(u);
      const unreadMsgs = visible.filter((x) => x.seq > model.wm(x.roomId, u.id));
      let m;
      if (unreadMsgs.length && rnd.chance(0.5)) m = rnd.pick(unreadMsgs); // mostly moves the watermark
      else if (visible.length && (!hidden.length || rnd.chance(0.88))) m = rnd.pick(visible);
      else if (hidden.length) m = rnd.pick(hidden);
      else return null;
      const desc = `read ${u.label} ${rlabel(m.roomId)}#${m.seq} (wm ${model.wm(m.roomId, u.id)})`;
      return [desc, async () => {
        const res = await u.api.post(`/api/messages/${m.id}/read`);
        if (!model.isMember(m.roomId, u.id)) { assert.equal(res.status, 403, `non-member read: ${show(res)}`); outcome('read 403'); return; }
        assert.equal(res.status, 200, `read: ${show(res)}`);
        outcome(m.seq > model.wm(m.roomId, u.id) ? 'read forward' : 'read at/below watermark');
        model.read(m.roomId, u.id, m.seq);
        assert.equal(res.body.room_id, m.roomId, 'read: room_id');
        assert.equal(res.body.up_to_seq, model.wm(m.roomId, u.id), 'read: up_to_seq = max(old watermark, seq)');
        assert.equal(res.body.unread_count, model.unread(m.roomId, u.id), 'read: unread_count');
      }];
    },

    async readBulk() {
      const u = rnd.pick(users);
      const visible = messagesVisibleTo(u);
      if (!visible.length) return null;
      const ids = [];
      const n = 1 + rnd.int(6);
      const unreadMsgs = visible.filter((x) => x.seq > model.wm(x.roomId, u.id));
      for (let i = 0; i < n; i++) ids.push(rnd.pick(unreadMsgs.length && rnd.chance(0.5) ? unreadMsgs : visible).id);
      if (rnd.chance(0.15)) ids.push(ids[0]); // duplicates are allowed
      const hidden = messagesHiddenFrom(u);
      let refused = null;
      if (hidden.length && rnd.chance(0.15)) refused = 'forbidden';
      else if (rnd.chance(0.04)) refused = 'unknown';
      if (refused) {
        const bad = refused === 'forbidden' ? rnd.pick(hidden).id : '999999999999';
        ids.splice(rnd.int(ids.length + 1), 0, bad);
      }
      const desc = `bulk-read ${u.label} [${ids.map((id) => (model.msgs.has(id) ? `${rlabel(model.msgs.get(id).roomId)}#${model.msgs.get(id).seq}` : id)).join(' ')}]`;
      return [desc, async () => {
        const res = await u.api.post('/api/messages/read', { message_ids: ids });
        // Visibility is judged at call time (membership may have changed since generation; it hasn't here).
        const forbidden = ids.some((id) => model.msgs.has(id) && !model.isMember(model.msgs.get(id).roomId, u.id));
        const unknown = ids.some((id) => !model.msgs.has(id));
        if (forbidden) { assert.equal(res.status, 403, `bulk read with a foreign message: ${show(res)}`); outcome('bulk 403'); return; }
        if (unknown) { assert.equal(res.status, 404, `bulk read with only an unknown id refused: ${show(res)}`); outcome('bulk 404'); return; }
        assert.equal(res.status, 200, `bulk read: ${show(res)}`);
        const order = [];
        const maxSeq = new Map();
        for (const id of ids) {
          const m = model.msgs.get(id);
          if (!maxSeq.has(m.roomId)) order.push(m.roomId);
          maxSeq.set(m.roomId, Math.max(maxSeq.get(m.roomId) ?? 0, m.seq));
        }
        for (const [roomId, s] of maxSeq) model.read(roomId, u.id, s);
        outcome(maxSeq.size > 1 ? 'bulk 200 multi-room' : 'bulk 200');
        const expected = order.map((roomId) => ({ room_id: roomId, up_to_seq: model.wm(roomId, u.id), unread_count: model.unread(roomId, u.id) }));
        const got = (res.body.rooms ?? []).map((r) => ({ room_id: r.room_id, up_to_seq: r.up_to_seq, unread_count: r.unread_count }));
        assert.deepEqual(got, expected, 'bulk read: rooms (order of first appearance, up_to_seq, unread_count)');
      }];
    },

    async markAll() {
      const u = rnd.pick(users);
      const roomId = roomFor(u);
      const desc = `mark-all-read ${u.label} ${rlabel(roomId)} (wm ${model.wm(roomId, u.id)}, last_seq ${model.lastSeq(roomId)})`;
      return [desc, async () => {
        const res = await u.api.post(`/api/chatrooms/${roomId}/mark-all-read`);
        if (!model.isMember(roomId, u.id)) { assert.equal(res.status, 403, `non-member mark-all-read: ${show(res)}`); outcome('mark-all 403'); return; }
        assert.equal(res.status, 200, `mark-all-read: ${show(res)}`);
        const before = model.unread(roomId, u.id);
        outcome(before ? 'mark-all marked>0' : 'mark-all marked=0');
        model.read(roomId, u.id, model.lastSeq(roomId));
        assert.deepEqual(
          { room_id: res.body.room_id, up_to_seq: res.body.up_to_seq, unread_count: res.body.unread_count, marked: res.body.marked },
          { room_id: roomId, up_to_seq: model.lastSeq(roomId), unread_count: 0, marked: before }, 'mark-all-read answer');
      }];
    },

    async add() {
      const actor = rnd.pick(users);
      const roomId = roomFor(actor, 0.9);
      const room = model.rooms.get(roomId);
      // Prefer former members (a re-join), else anyone (maybe a present member: no change).
      const former = users.filter((u) => !room.members.has(u.id) && room.wm.has(u.id));
      const target = former.length && rnd.chance(0.5) ? rnd.pick(former) : rnd.pick(users);
      const desc = `add ${actor.label} adds ${target.label} to ${rlabel(roomId)} (member: ${room.members.has(target.id)}, old wm ${room.wm.get(target.id) ?? '-'}, last_seq ${room.msgs.length})`;
      return [desc, async () => {
        const res = await actor.api.post(`/api/chatrooms/${roomId}/members`, { user_id: target.id });
        if (!room.members.has(actor.id)) { assert.equal(res.status, 403, `non-member add: ${show(res)}`); outcome('add 403'); return; }
        if (room.type === 'direct') { assert.equal(res.status, 400, `add on a direct room: ${show(res)}`); outcome('add 400 direct'); return; }
        assert.equal(res.status, 200, `add: ${show(res)}`);
        outcome(room.members.has(target.id) ? 'add present member' : room.wm.has(target.id) ? 're-join' : 'add new member');
        model.join(roomId, target.id);
        assertRoom(res.body);
        assert.equal(res.body.id, roomId);
        assert.deepEqual(sortedIds(res.body.members.map((x) => x.id)), sortedIds(room.members), 'add: members in answer');
        assert.equal(res.body.last_seq, room.msgs.length, 'add: last_seq in answer');
        assert.equal(res.body.unread_count, model.unread(roomId, actor.id), 'add: unread_count (of the caller) in answer');
      }];
    },

    async remove() {
      const kind = rnd.next();
      let actor; let roomId; let target;
      const groups = roomIds.filter((id) => model.rooms.get(id).type === 'group');
      if (kind < 0.4) { // self-leave
        actor = rnd.pick(users); roomId = roomFor(actor); target = actor;
      } else if (kind < 0.7) { // the creator removes someone
        roomId = rnd.pick(groups);
        const room = model.rooms.get(roomId);
        actor = byId.get(room.createdBy);
        target = rnd.pick(users.filter((u) => u !== actor));
      } else if (kind < 0.9) { // a non-creator member removes another member → 403
        roomId = rnd.pick(groups);
        const room = model.rooms.get(roomId);
        const cands = users.filter((u) => room.members.has(u.id) && u.id !== room.createdBy);
        if (!cands.length) return null;
        actor = rnd.pick(cands);
        const targets = users.filter((u) => room.members.has(u.id) && u !== actor);
        if (!targets.length) return null;
        target = rnd.pick(targets);
      } else { // anything
        actor = rnd.pick(users); roomId = rnd.pick(roomIds); target = rnd.pick(users);
      }
      const room = model.rooms.get(roomId);
      // Keep every room alive: the last member never leaves (what happens then is unspecified).
      if (target === actor && room.members.has(actor.id) && room.members.size <= 1) return null;
      // A non-creator removing a non-member: 403 or 404 is a matter of check order; not generated.
      if (room.members.has(actor.id) && room.type === 'group' && target !== actor && actor.id !== room.createdBy && !room.members.has(target.id)) return null;
      const desc = `remove ${actor.label} removes ${target.label} from ${rlabel(roomId)} (creator ${label(room.createdBy)}, members ${[...room.members].map(label).join(',')})`;
      return [desc, async () => {
        const res = await actor.api.del(`/api/chatrooms/${roomId}/members/${target.id}`);
        if (!room.members.has(actor.id)) { assert.equal(res.status, 403, `remove by non-member: ${show(res)}`); outcome('remove 403 non-member'); return; }
        if (room.type === 'direct') { assert.equal(res.status, 400, `remove on a direct room: ${show(res)}`); outcome('remove 400 direct'); return; }
        if (target !== actor && actor.id !== room.createdBy) { assert.equal(res.status, 403, `non-creator removes another: ${show(res)}`); outcome('remove 403 non-creator'); return; }
        if (!room.members.has(target.id)) { assert.equal(res.status, 404, `creator removes a non-member: ${show(res)}`); outcome('remove 404 non-member'); return; }
        assert.equal(res.status, 204, `remove: ${show(res)}`);
        outcome(target === actor ? 'self-leave' : 'creator removes');
        model.leave(roomId, target.id);
      }];
    },

    // Concurrent sends, reads and mark-all-reads by members of one room. The order in which
    // the server applies them is unknown, but the end state is not: new messages get seqs
    // L+1..L+k, and a member's final watermark is the max of the old one, the seqs they sent
    // or read and every up_to_seq the server reported to them (the watermark only moves up).
    async burst(step) {
      const cands = roomIds.filter((id) => model.rooms.get(id).members.size >= 2);
      if (!cands.length) return null;
      const roomId = rnd.pick(cands);
      const room = model.rooms.get(roomId);
      const members = users.filter((u) => room.members.has(u.id));
      const subs = [];
      const k = 3 + rnd.int(6);
      for (let i = 0; i < k; i++) {
        const u = rnd.pick(members);
        const x = rnd.next();
        if (x < 0.5 || room.msgs.length === 0) subs.push({ kind: 'send', u, content: `b${step}.${i} ${rnd.pick(words)}`, cmid: `b${step}.${i}-${SEED % 1000}` });
        else if (x < 0.8) subs.push({ kind: 'read', u, m: rnd.pick(room.msgs) });
        else subs.push({ kind: 'mark-all', u });
      }
      for (const o of subs) if (o.kind === 'send' && viaRnd.chance(WS_SEND_SHARE)) o.via = viaRnd.pick(sb.get(o.u.id).live);
      const desc = `burst ${rlabel(roomId)} (last_seq ${room.msgs.length}) [${subs.map((o) => `${o.kind} ${o.u.label}${o.m ? ` #${o.m.seq}` : ''}${o.via ? ` over WS conn #${o.via.n}` : ''}`).join(', ')}]`;
      return [desc, async () => {
        const L = room.msgs.length;
        const oldWm = new Map(members.map((u) => [u.id, model.wm(roomId, u.id)]));
        const results = await Promise.all(subs.map(async (o) => {
          if (o.kind === 'send' && o.via) {
            const ev = await retryShed(() => wsSend(o.via, { room_id: roomId, content: o.content, client_msg_id: o.cmid }), { onShed });
            return ev.type === 'ack' && ev.data.client_msg_id === o.cmid ? { status: 201, body: ev.data.message } : { status: `${ev.type}`, body: ev };
          }
          if (o.kind === 'send') return retryShed(() => o.u.api.post(`/api/chatrooms/${roomId}/messages`, { content: o.content }), { onShed });
          if (o.kind === 'read') return o.u.api.post(`/api/messages/${o.m.id}/read`);
          return o.u.api.post(`/api/chatrooms/${roomId}/mark-all-read`);
        }));
        const nSends = subs.filter((o) => o.kind === 'send').length;
        const H = L + nSends;
        const finalWm = new Map(oldWm);
        const bump = (u, v) => finalWm.set(u, Math.max(finalWm.get(u), v));
        const sent = [];
        subs.forEach((o, i) => {
          const res = results[i];
          const what = `burst sub-op ${i} (${o.kind} ${o.u.label}${o.via ? ` over WS conn #${o.via.n}` : ''})`;
          if (o.kind === 'send') {
            assert.equal(res.status, 201, `${what}: ${show(res)}`);
            assertMessage(res.body, { content: o.content, sender_id: o.u.id, room_id: roomId, ...(o.via ? { client_msg_id: o.cmid } : {}) });
            sent.push([res.body, o.u.id, o]);
            bump(o.u.id, res.body.seq);
            return;
          }
          assert.equal(res.status, 200, `${what}: ${show(res)}`);
          assert.equal(res.body.room_id, roomId, `${what}: room_id`);
          const up = res.body.up_to_seq;
          const floor = o.kind === 'read' ? Math.max(oldWm.get(o.u.id), o.m.seq) : Math.max(oldWm.get(o.u.id), L);
          assert.ok(Number.isInteger(up) && up >= floor && up <= H, `${what}: up_to_seq ${up} outside ${floor}..${H}`);
          // unread at that moment = last_seq then (between L and H) - up_to_seq
          assert.ok(res.body.unread_count >= 0 && up + res.body.unread_count >= L && up + res.body.unread_count <= H,
            `${what}: unread_count ${res.body.unread_count} with up_to_seq ${up} (last_seq between ${L} and ${H})`);
          if (o.kind === 'mark-all') {
            assert.equal(res.body.unread_count, 0, `${what}: unread_count`);
            assert.ok(res.body.marked >= 0 && res.body.marked <= up - oldWm.get(o.u.id), `${what}: marked ${res.body.marked}`);
          }
          bump(o.u.id, o.kind === 'read' ? Math.max(o.m.seq, up) : up);
        });
        sent.sort((x, y) => x[0].seq - y[0].seq);
        assert.deepEqual(sent.map(([b]) => b.seq), Array.from({ length: nSends }, (_, i) => L + 1 + i), 'burst: seqs of concurrent sends');
        for (const [body, uid, o] of sent) recordSend(roomId, uid, body, o.via ? o.cmid : undefined, o.via ?? null);
        for (const [uid, w] of finalWm) room.wm.set(uid, w);
        outcome('burst');
      }];
    },
  };

  const weights = [['send', 34], ['readOne', 14], ['readBulk', 12], ['markAll', 8], ['add', 13], ['remove', 14], ['burst', 6]];
  const totalWeight = weights.reduce((s, [, w]) => s + w, 0);
  function pickOp() {
    let x = rnd.next() * totalWeight;
    for (const [name, w] of weights) { if ((x -= w) < 0) return name; }
    return 'send';
  }

  // `delivered` on one of u's sidebars (its own PRNG stream). Resolves once the server has
  // handled it: a move → its message_delivered on that socket; a refusal → the error; no move
  // → the answer to a heartbeat sent after it (a connection handles its frames in order).
  const delRnd = prng((SEED ^ 0x27d4eb2f) >>> 0);
  function deliveredOp() {
    const u = delRnd.pick(users);
    const conn = delRnd.pick(sb.get(u.id).live);
    const mine = model.roomsOf(u.id).map((r) => r.id);
    const roomId = mine.length && delRnd.chance(0.9) ? delRnd.pick(mine) : delRnd.pick(roomIds);
    const last = model.lastSeq(roomId);
    const dwm = model.isMember(roomId, u.id) ? model.dwm(roomId, u.id) : 0;
    const c = delRnd.next();
    // Mostly a move (above the delivered watermark), else at or below it, sometimes past last_seq.
    const upTo = c < 0.1 ? last + 1 + delRnd.int(1000)
      : c < 0.6 && dwm < last ? dwm + 1 + delRnd.int(last - dwm) : delRnd.int(last + 1);
    const desc = `delivered ${u.label} ${rlabel(roomId)} up_to_seq ${upTo} on conn #${conn.n} (dwm ${model.dwm(roomId, u.id)}, wm ${model.wm(roomId, u.id)}, last_seq ${last})`;
    return [desc, async () => {
      const s = conn.st;
      const member = model.isMember(roomId, u.id);
      const before = model.dwm(roomId, u.id);
      const after = Math.max(before, Math.min(upTo, last));
      // An error (no client_msg_id) is written before the heartbeat's answer; a server that
      // sheds load answers `overloaded` and stores nothing: sent again after a while.
      let error;
      for (let attempt = 0; ; attempt++) {
        error = undefined;
        const w = { cmid: undefined, resolve: (ev) => { error = ev; } };
        s.waiters.push(w);
        const fence = new Promise((resolve) => s.acks.push(resolve));
        conn.ws.send(JSON.stringify({ type: 'delivered', data: { room_id: roomId, up_to_seq: upTo } }));
        conn.ws.send(JSON.stringify({ type: 'heartbeat', data: { timestamp: 1 } }));
        await fence;
        const i = s.waiters.indexOf(w);
        if (i >= 0) s.waiters.splice(i, 1);
        if (error?.data?.code !== 'overloaded' || attempt >= 50) break;
        outcome('delivered overloaded (sent again)');
        await sleep(200);
      }
      if (!member) {
        assert.ok(error, 'non-member delivered: no error before the heartbeat answer');
        assert.equal(error.type, 'error', `non-member delivered: ${JSON.stringify(error)}`);
        assert.equal(error.data.code, 'forbidden', `non-member delivered: ${JSON.stringify(error)}`);
        outcome('delivered 403');
        return;
      }
      assert.equal(error, undefined, `member delivered answered ${JSON.stringify(error)}`);
      model.delivered(roomId, u.id, upTo);
      assert.equal(model.dwm(roomId, u.id), after, 'delivered: the model moved as computed');
      if (after === before) { outcome('delivered no move'); return; }
      const key = `${roomId}|${u.id}`;
      await waitUntil(() => (s.lastDeliv.get(key) ?? 0) >= after, SETTLE_MS);
      assert.equal(s.lastDeliv.get(key), after, `delivered: message_delivered up_to_seq on the sending socket (moved ${before} → ${after})`);
      outcome(upTo > last ? 'delivered clamped' : 'delivered forward');
    }];
  }

  // A reaction PUT or DELETE by u (its own PRNG stream) on a message of one of u's rooms
  // (sometimes of another room: 403), with one of a few emoji, so that repeats and removals
  // of what is not there (no-ops) come often. Its answer must be the model's map; a change
  // must reach every open sidebar of every member as exactly one `reaction` (awaited here, so
  // that two changes of one reaction never race), a no-op none (any event not due is a problem).
  const reactRnd = prng((SEED ^ 0x165667b1) >>> 0);
  const EMOJI = ['👍', '❤️', '👨‍👩‍👧', '🇫🇷'];
  function reactionOp() {
    const u = reactRnd.pick(users);
    const mine = model.roomsOf(u.id).filter((r) => r.msgs.length);
    const others = [...model.rooms.values()].filter((r) => r.msgs.length && !r.members.has(u.id));
    const pool = mine.length && (!others.length || reactRnd.chance(0.9)) ? mine : others;
    if (!pool.length) return null;
    let room = reactRnd.pick(pool);
    let m = reactRnd.pick(room.msgs);
    let emoji = reactRnd.pick(EMOJI);
    const add = reactRnd.chance(0.6);
    // Mostly a DELETE (sometimes a PUT again) of one of u's reactions: random picks seldom hit one.
    const own = mine.flatMap((r) => r.msgs.flatMap((x) => Object.keys(x.reactions).filter((e) => x.reactions[e].includes(u.id)).map((e) => [r, x, e])));
    if (own.length && pool === mine && reactRnd.chance(add ? 0.2 : 0.8)) [room, m, emoji] = reactRnd.pick(own);
    const desc = `${add ? 'PUT' : 'DELETE'} reaction ${emoji} by ${u.label} on ${rlabel(room.id)}#${m.seq} (now ${JSON.stringify(m.reactions[emoji]?.map(label) ?? [])})`;
    return [desc, async () => {
      // Due before the call: its event may reach the sockets before its answer reaches us.
      const member = room.members.has(u.id);
      const willChange = member && (m.reactions[emoji] ?? []).includes(u.id) !== add;
      const key = `${m.id}|${u.id}|${emoji}|${add ? 'add' : 'remove'}`;
      const due = willChange ? [...room.members].flatMap((uid) => sb.get(uid).live) : [];
      for (const c of due) c.st.reactDue.set(key, (c.st.reactDue.get(key) ?? 0) + 1);
      const url = `/api/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`;
      const res = add ? await u.api.put(url) : await u.api.del(url);
      if (!member) {
        assert.equal(res.status, 403, `non-member reaction: ${show(res)}`);
        assert.equal(res.body?.error?.code, 'forbidden', `non-member reaction: ${show(res)}`);
        outcome('reaction 403');
        return;
      }
      assert.equal(res.status, 200, `reaction: ${show(res)}`);
      assert.equal(model.react(m.id, u.id, emoji, add), willChange, 'reaction: the model changed as computed');
      assert.deepEqual(res.body, { message_id: m.id, reactions: m.reactions }, 'reaction: the answer is the model\'s map');
      if (!willChange) { outcome('reaction no-op'); return; }
      await waitUntil(() => due.every((c) => !c.st.reactDue.has(key)), SETTLE_MS);
      const missing = due.filter((c) => c.st.reactDue.has(key)).map((c) => `#${c.n}${c.srv} of ${label(c.user.id)}`);
      assert.deepEqual(missing, [], `reaction: no \`reaction\` event within ${SETTLE_MS} ms on`);
      outcome(add ? 'reaction add' : 'reaction remove');
    }];
  }

  const history = [];
  const counts = {};
  // checks: run checkStep (and, every WS_EVERY steps, checkSidebars) after fn.
  const inOutage = (step) => outage !== null && step >= outage.from && step <= outage.to;
  async function runStep(step, desc, fn, full, checks = true) {
    curStep = step;
    try {
      if (outage && step === outage.from) { history.push(`${step}-: outage begins`); await outage.begin(); }
      await fn();
      if (outage && step === outage.to) { history.push(`${step}+: outage ends`); await outage.end(); }
      if (checks) {
        await checkStep(full);
        if (outage && step === outage.to) await checkSidebars();
        else if (inOutage(step)) { for (const u of users) validateReceived(u); } // what did arrive is checked at the end of the outage
        else if (full || step % WS_EVERY === 0) await checkSidebars();
      }
    } catch (e) {
      const how = reproduce ?? (caseName === 'few' ? `PARLEY_MODEL_USERS=${N_USERS} PARLEY_MODEL_STEPS=${STEPS}` : `PARLEY_MODEL_MANY_USERS=${N_USERS} PARLEY_MODEL_MANY_STEPS=${STEPS}`);
      const msg = `model test failed (${N_USERS} users${servers.length > 1 ? ` over ${servers.length} instances` : ''}): seed=${SEED} step=${step} op="${desc}"\n` +
        `  (reproduce: PARLEY_MODEL_SEED=${SEED} ${how} PARLEY_MODEL_WS_SEND_SHARE=${WS_SEND_SHARE})\n` +
        `  recent ops:\n${history.slice(-(Number(process.env.PARLEY_MODEL_HISTORY) || 12)).map((h) => `    ${h}`).join('\n')}\n  ${e.message}`;
      console.error(msg);
      const err = new Error(msg);
      err.cause = e;
      throw err;
    }
  }

  // A few sidebar reconnects, between steps, at steps chosen by the sidebar's own PRNG.
  const reconnectAt = new Set();
  const nReconnects = Math.min(STEPS, Math.max(3, Math.min(10, Math.round(STEPS / 60))));
  while (reconnectAt.size < nReconnects) reconnectAt.add(1 + wsRnd.int(STEPS));

  await runStep(0, 'setup', async () => {}, true);
  for (let step = 1; step <= STEPS; step++) {
    let gen = null;
    let name;
    for (let tries = 0; !gen && tries < 20; tries++) { name = pickOp(); gen = await ops[name](step); }
    if (!gen) { name = 'send'; gen = await ops.send(step); }
    const [desc, fn] = gen;
    counts[name] = (counts[name] ?? 0) + 1;
    history.push(`${step}: ${desc}`);
    await runStep(step, desc, fn, step % FULL_EVERY === 0 || step === STEPS);
    if (delRnd.chance(0.3)) {
      const [ddesc, dfn] = deliveredOp();
      counts.delivered = (counts.delivered ?? 0) + 1;
      history.push(`${step}+: ${ddesc}`);
      await runStep(step, ddesc, dfn, false, false);
    }
    if (reactRnd.chance(REACTION_SHARE) && !inOutage(step)) { // no reaction events while the bus is away
      const gen = reactionOp();
      if (gen) {
        counts.reaction = (counts.reaction ?? 0) + 1;
        history.push(`${step}+: ${gen[0]}`);
        await runStep(step, gen[0], gen[1], false, false);
      }
    }
    if (reconnectAt.has(step) && !inOutage(step)) {
      // Mostly a user with two sidebars (one of them goes), sometimes anyone.
      const u = wsRnd.chance(0.5) ? wsRnd.pick(users.slice(0, N_TWO_SIDEBARS)) : wsRnd.pick(users);
      const which = wsRnd.int(2);
      const rdesc = `reconnect ${u.label}'s sidebar (${sb.get(u.id).live.length} open; rooms ${model.roomsOf(u.id).map((r) => rlabel(r.id)).join(',') || '-'})`;
      history.push(`${step}+: ${rdesc}`);
      await runStep(step, rdesc, () => reconnectSidebar(u, which), false, false);
    }
  }

  // ---- final: every message's read-by-who, and every room's full history ----
  await runStep(STEPS + 1, 'final: read-by-who of every message, history of every room', async () => {
    const jobs = [];
    for (const room of model.rooms.values()) {
      const asker = users.find((u) => room.members.has(u.id));
      for (const m of room.msgs) jobs.push(checkReadByWho(asker, m));
      jobs.push((async () => {
        const got = [];
        for (let after = 0; ;) {
          const res = await asker.api.get(`/api/chatrooms/${room.id}/messages?after_seq=${after}&limit=200`);
          assert.equal(res.status, 200, `history ${rlabel(room.id)}: ${show(res)}`);
          got.push(...res.body.messages);
          if (!res.body.has_more) break;
          after = res.body.messages.at(-1).seq;
        }
        assert.deepEqual(got.map((m) => [m.id, m.seq, m.sender_id, m.content]),
          room.msgs.map((m) => [m.id, m.seq, m.sender, m.content]), `history of ${rlabel(room.id)}`);
        assert.deepEqual(got.map((m) => m.reactions), room.msgs.map((m) => m.reactions), `reactions in the history of ${rlabel(room.id)}`);
      })());
    }
    await Promise.all(jobs);
  }, true);

  // ---- final: each open connection's newest update per room against REST ----
  await runStep(STEPS + 2, 'final: sidebars against GET /api/messages/unread-counts and GET /api/chatrooms', async () => {
    await checkSidebars();
    const withRooms = new Set(sample()); // with many users, the room lists (every member inlined) of a sample only
    await limited(users.map((u) => async () => {
      const [uc, cr] = await Promise.all([u.api.get('/api/messages/unread-counts'),
        withRooms.has(u) ? u.api.get('/api/chatrooms') : Promise.resolve(null)]);
      assert.equal(uc.status, 200, `${u.label} unread-counts: ${show(uc)}`);
      if (cr) assert.equal(cr.status, 200, `${u.label} chatrooms: ${show(cr)}`);
      const rooms = cr ? cr.body.chatrooms.map((r) => ({ id: r.id, unread_count: r.unread_count, last_seq: r.last_seq, src: 'GET /api/chatrooms' }))
        : Object.keys(uc.body.unread_counts).map((id) => ({ id, unread_count: uc.body.unread_counts[id], last_seq: model.lastSeq(id), src: 'the model' }));
      for (const conn of sb.get(u.id).live) {
        for (const r of rooms) {
          const k = conn.st.kept.get(r.id);
          const what = `${u.label} conn #${conn.n}${conn.srv} ${rlabel(r.id)}`;
          assert.ok(k, `${what}: no unread_count_update ever received on the sidebar`);
          const from = `newest sidebar unread_count_update (unread ${k.unread_count}, last_seq ${k.last_seq}; step ${k.step})`;
          assert.equal(k.unread_count, uc.body.unread_counts[r.id], `${what}: ${from} vs REST unread-counts ${uc.body.unread_counts[r.id]}`);
          assert.equal(k.unread_count, r.unread_count, `${what}: ${from} vs ${r.src} unread_count ${r.unread_count}`);
          if (k.last_seq === r.last_seq) { wsStats.finalExactLastSeq++; continue; }
          // An update comes when the count changes; the user's own messages leave it as it was
          // (their echoes included), so only those may follow it.
          const above = model.rooms.get(r.id).msgs.filter((m) => m.seq > k.last_seq);
          assert.ok(k.last_seq < r.last_seq && above.every((m) => m.sender === u.id),
            `${what}: ${from} vs ${r.src} last_seq ${r.last_seq}; above it: ` +
            `${above.map((m) => `#${m.seq} by ${label(m.sender)}`).join(', ')}`);
          wsStats.finalOwnTail++;
        }
      }
    }));
    await Promise.all(liveConns().map((c) => c.close()));
    assert.deepEqual(wsProblems, [], 'sidebar problems while closing');
  }, false, false);

  const msgs = [...model.rooms.values()].reduce((s, r) => s + r.msgs.length, 0);
  t.diagnostic(`seed=${SEED} users=${N_USERS} (registered in ${regMs} ms; ${N_TWO_SIDEBARS} with two sidebars) steps=${STEPS} ops=${JSON.stringify(counts)} messages=${msgs} ` +
    `(stored over REST ${wsStats.restSends}, over WebSocket ${wsStats.wsSends}; echoes received ${wsStats.echoes})`);
  t.diagnostic(`outcomes=${JSON.stringify(outcomes)} read_at observed=${readAtSeen.size} delivered_at observed=${deliveredAtSeen.size}`);
  t.diagnostic(`sidebar: frames=${JSON.stringify(wsStats.frames)} reconnects=${wsStats.reconnects} (at steps ${[...reconnectAt].sort((a, b) => a - b)}, ` +
    `${wsStats.snapshotRooms} snapshot rooms) final newest update last_seq = room's ${wsStats.finalExactLastSeq}, below it (own messages only) ${wsStats.finalOwnTail}`);
}
