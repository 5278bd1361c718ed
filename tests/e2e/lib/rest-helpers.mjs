// Helpers for the REST and configuration end-to-end tests (Node built-ins only).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import net from 'node:net';

// RFC 3339 UTC with milliseconds, as the contract requires.
export const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
// decisions.md: ids are 1–18 ASCII digits, no sign, no leading zero, as JSON strings.
export const ID_RE = /^[1-9]\d{0,17}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends an arbitrary request: body may be a string, a Buffer or undefined; headers as given.
// Returns {status, body (parsed JSON or raw text or null), text, headers}.
export async function raw(baseUrl, method, path, { body, headers = {}, token } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/json';
  const res = await fetch(baseUrl + path, { method, headers: h, body });
  const text = await res.text();
  let parsed = null;
  if (text.length) { try { parsed = JSON.parse(text); } catch { parsed = text; } }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

// Asserts the contract's error shape {"error":{"code","message"}} with the given status and code.
export function assertError(res, status, code, what = '') {
  const ctx = `${what} → ${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`;
  assert.equal(res.status, status, `status ${ctx}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error && typeof res.body.error === 'object',
    `error body ${ctx}`);
  assert.equal(typeof res.body.error.message, 'string', `error.message ${ctx}`);
  assert.ok(res.body.error.message.length > 0, `error.message non-empty ${ctx}`);
  if (code !== undefined) assert.equal(res.body.error.code, code, `error.code ${ctx}`);
  else assert.match(res.body.error.code, /^[a-z][a-z0-9_]*$/, `error.code snake_case ${ctx}`);
}

// Asserts a 2xx-style status with a readable message on failure.
export function assertStatus(res, status, what = '') {
  assert.equal(res.status, status,
    `${what} → ${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`);
}

export function assertUser(u, expected = {}) {
  assert.equal(typeof u, 'object');
  assert.match(u.id, ID_RE, 'user.id');
  assert.equal(typeof u.username, 'string');
  assert.match(u.created_at, TIME_RE, 'user.created_at');
  for (const k of Object.keys(u)) assert.ok(!/pass|hash|secret/i.test(k), `user leaks ${k}`);
  for (const [k, v] of Object.entries(expected)) assert.equal(u[k], v, `user.${k}`);
}

export function assertMessage(m, expected = {}) {
  assert.equal(typeof m, 'object');
  assert.ok(m !== null, 'message not null');
  assert.match(m.id, ID_RE, 'message.id');
  assert.match(m.room_id, ID_RE, 'message.room_id');
  assert.match(m.sender_id, ID_RE, 'message.sender_id');
  assert.equal(typeof m.content, 'string');
  assert.equal(typeof m.seq, 'number');
  assert.ok(Number.isInteger(m.seq) && m.seq >= 1, 'message.seq');
  assert.match(m.created_at, TIME_RE, 'message.created_at');
  for (const [k, v] of Object.entries(expected)) assertLike(m[k], v, `message.${k}`);
}

export function assertRoom(r, expected = {}) {
  assert.equal(typeof r, 'object');
  assert.match(r.id, ID_RE, 'room.id');
  assert.ok(r.type === 'group' || r.type === 'direct', 'room.type');
  assert.ok(Array.isArray(r.members), 'room.members');
  for (const u of r.members) assertUser(u);
  assert.match(r.created_by, ID_RE, 'room.created_by');
  assert.match(r.created_at, TIME_RE, 'room.created_at');
  assert.equal(typeof r.last_seq, 'number');
  assert.equal(typeof r.unread_count, 'number');
  assert.ok('last_message' in r, 'room.last_message present');
  if (r.last_message !== null) assertMessage(r.last_message);
  for (const [k, v] of Object.entries(expected)) assertLike(r[k], v, `room.${k}`);
}

// Projects `actual` onto the keys of `expected` (recursively; arrays element by element, and
// their lengths must still match) so that fields the project adds later do not break the
// comparison, while every expected field is still checked exactly. The `unread_counts` map is
// compared whole: a room too many is an error there.
export function project(actual, expected, key = '') {
  if (key === 'unread_counts') return actual;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return actual;
    return actual.map((a, i) => (i < expected.length ? project(a, expected[i]) : a));
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return actual;
    const out = {};
    for (const k of Object.keys(expected)) if (k in actual) out[k] = project(actual[k], expected[k], k);
    return out;
  }
  return actual;
}
export function assertLike(actual, expected, msg) {
  assert.deepEqual(project(actual, expected), expected, msg);
}

export const memberIds = (room) => room.members.map((u) => u.id).sort();

// ---- JWT forging ----
export const b64url = (buf) => Buffer.from(buf).toString('base64')
  .replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
export const b64urlJson = (obj) => b64url(Buffer.from(JSON.stringify(obj)));
export const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

// Signs header.payload with HMAC (alg 'HS256' → sha256, 'HS512' → sha512), or leaves the
// signature empty for alg 'none'.
export function signJwt(header, payload, key, hmac = 'sha256') {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  if (hmac === null) return `${input}.`;
  const sig = createHmac(hmac, key).update(input).digest();
  return `${input}.${b64url(sig)}`;
}

export function hmacOk(token, key, hmac = 'sha256') {
  const [h, p, s] = token.split('.');
  const expect = b64url(createHmac(hmac, key).update(`${h}.${p}`).digest());
  return expect === s;
}

// A free loopback port (bound then released).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Sends raw bytes on a fresh TCP connection and collects the response until the server
// closes or `ms` passes, or (unless untilClose) a complete response with Content-Length has
// arrived. Returns {status, statuses (of every response in the text), text, closed (the
// server ended the connection, not our timeout)}.
export function rawHttp(url, bytes, ms = 5000, { untilClose = false } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    let done = false;
    let closed = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((x) => Number(x[1]));
      resolve({ status: m ? Number(m[1]) : null, statuses, text, closed });
    };
    const ended = () => { closed = true; finish(); };
    const timer = setTimeout(finish, ms);
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (untilClose) return;
      // Stop as soon as a complete response with Content-Length has arrived.
      const t = data.toString('latin1');
      const headEnd = t.indexOf('\r\n\r\n');
      if (headEnd >= 0) {
        const cl = t.slice(0, headEnd).match(/\r\ncontent-length:\s*(\d+)/i);
        if (cl && data.length >= headEnd + 4 + Number(cl[1])) finish();
      }
    });
    sock.on('end', ended);
    sock.on('error', ended);
    sock.on('close', ended);
    sock.write(bytes, () => {});
  });
}

// A send that the server shed because it is behind (CONTRACT.md "Keep-alive": REST 503
// `unavailable` with Retry-After, WebSocket `error` `overloaded`; nothing is stored) is sent
// again after the Retry-After (1 s over WebSocket), at most `tries` times in all. `call` returns
// a REST answer {status, body, headers} or a WebSocket answer {type, data}; the last one is
// returned. onShed() is told of each shed send.
export async function retryShed(call, { tries = 30, onShed } = {}) {
  for (let i = 1; ; i++) {
    const r = await call();
    const rest = r.status === 503 && r.body?.error?.code === 'unavailable';
    const ws = r.type === 'error' && r.data?.code === 'overloaded';
    if ((!rest && !ws) || i >= tries) return r;
    onShed?.();
    const after = rest ? Number(r.headers?.get?.('retry-after')) : NaN;
    await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 2) * 1000 : 1000);
  }
}

// A group room made by owner with members ({user} objects of newUser), asserted 201.
export async function createGroupOk(owner, members, name = 'room') {
  const r = await owner.api.post('/api/chatrooms', { name, member_ids: members.map((m) => m.user.id) });
  assertStatus(r, 201, 'create room');
  return r.body;
}
// A message sent by who over REST, asserted 201 (or status: 200 for a retry of a stored one).
// A send shed at the entrance (503 unavailable with Retry-After: nothing was stored) goes
// again, as a client would; sanitizer builds run slowly enough to be shed under a burst.
export async function sendOk(who, roomId, content = 'hello', extra = {}, status = 201) {
  const r = await retryShed(() => who.api.post(`/api/chatrooms/${roomId}/messages`, { content, ...extra }));
  assertStatus(r, status, `send in ${roomId}`);
  return r.body;
}
