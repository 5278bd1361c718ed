// Regression tests for what a hostile client found: raw bytes echoed in an error body,
// non-finite numbers echoed in a pong, a percent-encoded token printed in the log, and
// WebSocket handshake refusals without the JSON error shape; and request smuggling through
// HTTP/1.1 framing (RFC 9112 §6.1) that lets a body be read as a second request.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/hardening.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUser } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { rawHttp, sleep } from './lib/rest-helpers.mjs';
import { open, probeUpgrade } from './lib/ws-client.mjs';

const { server, track } = useSuite();
let S;
before(async () => {
  process.env.PARLEY_TEST_LOG_LEVEL = 'info'; // the access log is what the redaction test reads
  S = await server(NO_COOLDOWN);
});

// GET with the raw bytes of the answer.
function rawGet(baseUrl, path, token) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port: Number(port), path, method: 'GET',
      headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('an error body never holds raw bytes from the request: GET /api/messages/%ff → 400, valid UTF-8 JSON', async () => {
  const a = await newUser(S, 'hua');
  for (const path of ['/api/messages/%ff', '/api/messages/%c3', '/api/chatrooms/%ed%a0%80/messages']) {
    const r = await rawGet(S.url, path, a.token);
    assert.equal(r.status, 400, path);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes); // throws on invalid UTF-8
    const body = JSON.parse(text);
    assert.equal(body.error.code, 'invalid_request', path);
    assert.ok(!r.bytes.includes(0xff), `${path}: no raw 0xFF byte`);
  }
});

test('ping/heartbeat with a timestamp that is not a finite number → error, never Infinity in a frame', async () => {
  const a = await newUser(S, 'hub');
  const c = track(await open(S.url, `/ws?token=${a.token}`));
  await sleep(100);
  c.drain();
  const raw = [];
  c.ws.on('message', (d) => raw.push(d.toString()));
  c.ws.send('{"type":"ping","data":{"timestamp":1e400}}');
  c.ws.send('{"type":"heartbeat","data":{"timestamp":-1e400}}');
  c.ws.send('{"type":"ping","data":{"timestamp":1.5e300}}');
  const e1 = await c.next('error');
  const e2 = await c.next('error');
  assert.equal(e1.data.code, 'invalid_request');
  assert.equal(e2.data.code, 'invalid_request');
  const pong = await c.next('pong');
  assert.equal(pong.data.timestamp, 1.5e300, 'a large finite number is echoed');
  for (const f of raw) {
    assert.ok(!/Infinity|NaN/.test(f), `frame holds no non-finite number: ${f}`);
    JSON.parse(f); // every frame is valid JSON
  }
});

test('a percent-encoded token= is redacted from the log, over REST and /ws', async () => {
  const a = await newUser(S, 'huc');
  await rawGet(S.url, `/api/nope?%74oken=${a.token}&x=1`);
  await rawGet(S.url, `/api/nope?t%6Fken=${a.token}`);
  const c = track(await open(S.url, `/ws?%74oken=${a.token}`)); // the gate decodes the name: accepted
  assert.equal(c.connected.type, 'connected');
  await probeUpgrade(S.url, `/ws?%74oken=${a.token}x`); // a refused one is logged too
  await sleep(300);
  assert.ok(!S.stderr.includes(a.token), 'the token never appears in the log');
  assert.ok(S.stderr.includes('REDACTED'), 'the redacted value is logged in its place');
  assert.ok(S.stderr.includes('x=1'), 'other parameters are kept');
});

test('WebSocket handshake refusals carry the JSON error shape: wrong version → 426, bad key → 400', async () => {
  const a = await newUser(S, 'hud');
  const v = await probeUpgrade(S.url, `/ws?token=${a.token}`, { 'Sec-WebSocket-Version': '8' });
  assert.equal(v.status, 426);
  assert.equal(v.headers['sec-websocket-version'], '13');
  assert.equal(v.body.error.code, 'upgrade_required');
  for (const key of ['', 'short', 'x'.repeat(24)]) {
    const k = await probeUpgrade(S.url, `/ws?token=${a.token}`, { 'Sec-WebSocket-Key': key });
    assert.equal(k.status, 400, `key ${JSON.stringify(key)}`);
    assert.equal(k.body.error.code, 'invalid_request');
  }
  const ok = await probeUpgrade(S.url, `/ws?token=${a.token}`);
  assert.equal(ok.status, 101, 'a well-formed handshake is still accepted');
});

test('a token signed with the server\'s key for a user that does not exist → 401 everywhere', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-key-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, 'k'.repeat(40));
  // The token comes from one database; the server is then started on a fresh one, same key.
  const first = await server(['--jwt-secret-file', keyFile, ...NO_COOLDOWN]);
  const a = await newUser(first, 'hue');
  await first.stop();
  const fresh = await server(['--jwt-secret-file', keyFile, ...NO_COOLDOWN]);
  const headers = { Authorization: `Bearer ${a.token}` };
  for (const path of ['/api/chatrooms', '/api/me', '/api/messages/unread-counts']) {
    const r = await fetch(fresh.url + path, { headers });
    assert.equal(r.status, 401, path);
    assert.equal((await r.json()).error.code, 'unauthorized', path);
  }
  for (const path of [`/ws?token=${a.token}`, `/api/ws?token=${a.token}&room_id=1`]) {
    const p = await probeUpgrade(fresh.url, path);
    assert.equal(p.status, 401, path);
    assert.equal(p.body.error.code, 'unauthorized', path);
  }
  // A user of the fresh database is let in as before.
  const b = await newUser(fresh, 'huf');
  assert.equal((await fetch(fresh.url + '/api/chatrooms', { headers: { Authorization: `Bearer ${b.token}` } })).status, 200);
  assert.equal((await probeUpgrade(fresh.url, `/ws?token=${b.token}`)).status, 101);
  rmSync(dir, { recursive: true, force: true });
});

// Writes raw bytes on a fresh TCP connection and collects everything until the server closes
// it (or `ms` passes).
const rawExchange = (baseUrl, bytes, ms = 5000) => rawHttp(baseUrl, bytes, ms, { untilClose: true });

// A complete request that, if read as a request of its own, stores `content` in the room.
function smuggled(roomId, token, content) {
  const body = JSON.stringify({ content });
  return `POST /api/chatrooms/${roomId}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

test('request smuggling (RFC 9112 §6.1): ambiguous framing → 400, the connection closes, the body is never a request', async () => {
  const a = await newUser(S, 'hug');
  const room = await a.api.post('/api/chatrooms', { name: 'smuggling', member_ids: [] });
  assert.equal(room.status, 201);
  const id = room.body.id;
  const inner = (tag) => smuggled(id, a.token, `SMUGGLED-${tag}`);
  const lenOf = (s) => Buffer.byteLength(s);
  const variants = {
    'TE chunked, identity': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n${inner(t)}`,
    'TE identity': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n${inner(t)}`,
    'TE xchunked + CL': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n${inner(t)}`,
    'TE chunked + CL': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${inner(t)}`,
    'CL + TE chunked': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner(t)}`,
    'TE chunked twice': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner(t)}`,
    'TE on two lines, last identity': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${inner(t)}`,
    'two differing CL headers': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${lenOf(inner(t))}\r\n\r\n${inner(t)}`,
    'CL list with differing values': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0, ${lenOf(inner(t))}\r\n\r\n${inner(t)}`,
    'obs-folded header line': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nX-Note: one\r\n two\r\n\r\n${inner(t)}`,
    'obs-folded Content-Length': (t) => `POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 0\r\n\r\n${inner(t)}`,
    'TE in HTTP/1.0': (t) => `POST /healthz HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${inner(t)}`,
  };
  let n = 0;
  for (const [name, make] of Object.entries(variants)) {
    const tag = String(n++);
    const r = await rawExchange(S.url, make(tag));
    assert.deepEqual(r.statuses, [400], `${name}: exactly one answer, 400: ${JSON.stringify(r.text)}`);
    assert.match(r.text, /\r\nConnection: close\r\n/i, `${name}: Connection: close`);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.code, 'invalid_request', name);
    assert.equal(typeof body.error.message, 'string', name);
    assert.ok(r.closed, `${name}: the server closed the connection`);
  }
  const hist = await a.api.get(`/api/chatrooms/${id}/messages`);
  assert.equal(hist.status, 200);
  assert.deepEqual(hist.body.messages.map((m) => m.content), [], 'no smuggled message was stored');

  // Well-framed requests on the same kind of connection still work: a chunked body, and a
  // pipelined pair with equal Content-Lengths.
  const body = JSON.stringify({ content: 'chunked ok' });
  const chunked = `POST /api/chatrooms/${id}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\n` +
    `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
    `${lenOf(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const c = await rawExchange(S.url, chunked);
  assert.deepEqual(c.statuses, [201], c.text);
  const same = JSON.stringify({ content: 'equal lengths ok' });
  const pair = `POST /api/chatrooms/${id}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\n` +
    `Content-Length: ${lenOf(same)}\r\nContent-Length: ${lenOf(same)}\r\n\r\n${same}` +
    `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const p = await rawExchange(S.url, pair);
  assert.deepEqual(p.statuses, [201, 200], p.text);
  const after = await a.api.get(`/api/chatrooms/${id}/messages`);
  assert.deepEqual(after.body.messages.map((m) => m.content), ['chunked ok', 'equal lengths ok']);
});
