// Attachments with upload progress (CONTRACT.md "Beyond the seed" → Attachments) against a real
// `parley serve`: POST /api/uploads, the streamed PUT (size and sha256 checked, nothing kept on a
// refusal), upload_progress to every connection of the uploader, GET streamed back with its
// headers to the uploader and the members of a room where it was sent (Bearer or a signed
// link), attachment_ids on REST and WebSocket sends, attachments in history / new_message /
// ack, every limit, expiry of unfinished uploads, and the server's memory during a 25 MiB
// upload. The two-instance case is in uploads_cluster.test.mjs.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/uploads.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUser, client, ON_POSTGRES } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { sleep, assertStatus, assertError, rawHttp } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';

const MiB = 1024 * 1024;
const { server, track } = useSuite();
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// The uploads directory of a server: the default (<data dir>/uploads) on SQLite, a directory of
// the test's own on PostgreSQL (no SQLite file to sit next to).
async function uploadServer(extra = []) {
  if (!ON_POSTGRES) {
    const s = await server([...NO_COOLDOWN, ...extra]);
    s.uploadsDir = join(s.dir, 'uploads');
    return s;
  }
  const d = mkdtempSync(join(tmpdir(), 'parley-uploads-'));
  dirs.push(d);
  const s = await server([...NO_COOLDOWN, '--uploads-dir', d, ...extra]);
  s.uploadsDir = d;
  return s;
}

let S;
before(async () => { S = await uploadServer(); });

const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const sidebar = async (srv, u) => track(await open(srv.url, `/ws?token=${u.token}`));
const chatroom = async (srv, u, roomId) => track(await open(srv.url, `/api/ws?token=${u.token}&room_id=${roomId}`));
const isProgress = (id) => where(`upload_progress ${id}`, (e) => e.type === 'upload_progress' && e.data.upload_id === id);
const progressOf = (c, id) => c.all.filter((e) => e.type === 'upload_progress' && e.data.upload_id === id);

async function group(owner, members, name = 'files') {
  const r = await owner.api.post('/api/chatrooms', { name, member_ids: members.map((m) => m.user.id) });
  assertStatus(r, 201, 'create room');
  return r.body;
}
async function create(u, size, { filename = 'notes.txt', content_type = 'text/plain' } = {}) {
  const r = await u.api.post('/api/uploads', { filename, content_type, size });
  assertStatus(r, 201, 'create upload');
  return r.body;
}
async function put(srv, token, id, body, headers = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${srv.url}/api/uploads/${id}`, { method: 'PUT', headers: h, body, duplex: 'half' });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed, headers: res.headers };
}
async function get(srv, path, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(srv.url + path, { headers });
  const buf = Buffer.from(await res.arrayBuffer());
  let body = null;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(buf.toString());
  return { status: res.status, buf, body, headers: res.headers };
}
async function uploaded(srv, u, bytes, opts) {
  const up = await create(u, bytes.length, opts);
  const r = await put(srv, u.token, up.id, bytes);
  assertStatus(r, 200, 'PUT');
  return r.body;
}
// A raw PUT: exactly these bytes after the header (for chunked bodies of the wrong size).
function rawPut(srv, token, id, head, body) {
  return rawHttp(srv.url, Buffer.concat([Buffer.from(
    `PUT /api/uploads/${id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${head}\r\n`), body]), 5000);
}
const chunked = (...parts) => Buffer.from(parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n');
const filesIn = (d) => (existsSync(d) ? readdirSync(d) : []);

test('create, streamed PUT (sha256 checked) and GET with the declared type, a safe Content-Disposition and nosniff', async () => {
  const alice = await newUser(S, 'ua');
  const bytes = Buffer.from('hello, attachments \u00e9\n'.repeat(100));
  const c = await alice.api.post('/api/uploads', { filename: 'r\u00e9sum\u00e9 "v2".txt', content_type: 'Text/Plain', size: bytes.length });
  assertStatus(c, 201, 'create');
  assert.deepEqual(c.body, { id: c.body.id, filename: 'r\u00e9sum\u00e9 "v2".txt', content_type: 'text/plain', size: bytes.length, sha256: null });
  const p = await put(S, alice.token, c.body.id, bytes);
  assertStatus(p, 200, 'put');
  assert.deepEqual(p.body, { id: c.body.id, filename: 'r\u00e9sum\u00e9 "v2".txt', content_type: 'text/plain', size: bytes.length, sha256: sha(bytes) });
  const g = await get(S, `/api/uploads/${c.body.id}`, alice.token);
  assert.equal(g.status, 200);
  assert.ok(g.buf.equals(bytes), 'the same bytes back');
  assert.equal(g.headers.get('content-type'), 'text/plain');
  assert.equal(g.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(g.headers.get('content-disposition'),
    'attachment; filename="r__sum__ _v2_.txt"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%22v2%22.txt');
  // The file is named by a random server-made key; nothing of the client's reaches the disk.
  const files = filesIn(S.uploadsDir);
  assert.ok(files.length >= 1 && files.every((f) => /^[0-9a-f]{32}(\.part)?$/.test(f)), `files: ${files}`);
  // An undeclared or odd type is served as application/octet-stream.
  const odd = await uploaded(S, alice, Buffer.from('<html>x</html>'), { filename: 'x.html', content_type: 'text/html; charset=utf-8' });
  assert.equal(odd.content_type, 'application/octet-stream');
  assert.equal((await get(S, `/api/uploads/${odd.id}`, alice.token)).headers.get('content-type'), 'application/octet-stream');
});

test('upload_progress reaches every connection of the uploader (throttled, the last with received == total), nobody else', async () => {
  const alice = await newUser(S, 'ub');
  const bob = await newUser(S, 'ub');
  const room = await group(alice, [bob]);
  const aSide = await sidebar(S, alice);
  const aRoom = await chatroom(S, alice, room.id);
  const bSide = await sidebar(S, bob);
  const total = 3 * MiB;
  const up = await create(alice, total, { filename: 'slow.bin', content_type: 'application/octet-stream' });
  // A body that trickles in over ~600 ms: several progress events, at most one per 100 ms.
  const chunk = Buffer.alloc(64 * 1024, 7);
  const stream = new ReadableStream({
    async start(ctl) {
      for (let sent = 0; sent < total; sent += chunk.length) {
        ctl.enqueue(chunk);
        if ((sent / chunk.length) % 4 === 3) await sleep(50);
      }
      ctl.close();
    },
  });
  const r = await put(S, alice.token, up.id, stream);
  assertStatus(r, 200, 'put');
  for (const c of [aSide, aRoom]) {
    const last = await c.next(where('final progress', (e) => e.type === 'upload_progress' && e.data.received === total), 3000);
    assert.deepEqual(last.data, { upload_id: up.id, received: total, total });
    const seen = progressOf(c, up.id);
    assert.ok(seen.length >= 3, `several progress events: ${seen.length}`);
    for (let i = 1; i < seen.length; ++i) assert.ok(seen[i].data.received >= seen[i - 1].data.received, 'monotonic');
    assert.equal(seen.filter((e) => e.data.received === total).length, 1, 'one final');
    // ~600 ms of body at most one per 100 ms: no more than ~8 (slack for scheduling).
    assert.ok(seen.length <= 10, `throttled: ${seen.length}`);
  }
  await sleep(200);
  assert.equal(progressOf(bSide, up.id).length, 0, 'a room member does not get the uploader\'s progress');
});

test('create refusals and limits: size (25 MiB → 413), filename, content_type, pending per user, unauthenticated', async () => {
  const u = await newUser(S, 'uc');
  const ok = { filename: 'a.txt', content_type: 'text/plain', size: 1 };
  assertError(await u.api.post('/api/uploads', { ...ok, size: 25 * MiB + 1 }), 413, 'payload_too_large', '25 MiB + 1');
  assertStatus(await u.api.post('/api/uploads', { ...ok, size: 25 * MiB }), 201, 'exactly 25 MiB');
  assertError(await u.api.post('/api/uploads', { ...ok, size: 0 }), 400, 'invalid_request', 'size 0');
  assertError(await u.api.post('/api/uploads', { ...ok, size: -5 }), 400, 'invalid_request', 'negative');
  assertError(await u.api.post('/api/uploads', { ...ok, size: '12' }), 400, 'invalid_request', 'string size');
  assertError(await u.api.post('/api/uploads', { ...ok, filename: 'x'.repeat(256) }), 400, 'invalid_request', 'filename 256');
  assertStatus(await u.api.post('/api/uploads', { ...ok, filename: 'x'.repeat(255) }), 201, 'filename 255');
  assertError(await u.api.post('/api/uploads', { ...ok, filename: '../../etc/passwd' }), 400, 'invalid_request', 'slashes');
  assertError(await u.api.post('/api/uploads', { ...ok, filename: 'a\nb' }), 400, 'invalid_request', 'control');
  assertError(await u.api.post('/api/uploads', { ...ok, filename: '' }), 400, 'invalid_request', 'empty');
  assertError(await u.api.post('/api/uploads', { ...ok, content_type: 'a/' + 'b'.repeat(126) }), 400, 'invalid_request', 'type 128');
  assertError(await u.api.post('/api/uploads', { filename: 'a' }), 400, 'invalid_request', 'missing fields');
  assertError(await client(S.url).post('/api/uploads', ok), 401, 'unauthorized', 'no token');
  // 20 unfinished uploads per user (2 made above): the 21st is refused, a finished one frees a slot.
  const made = [];
  for (let i = 2; i < 20; ++i) made.push(await create(u, 1));
  assertError(await u.api.post('/api/uploads', ok), 429, 'too_many_uploads', '21st pending');
  assertStatus(await put(S, u.token, made[0].id, Buffer.from('x')), 200, 'finish one');
  assertStatus(await u.api.post('/api/uploads', ok), 201, 'a slot again');
});

test('PUT refusals: another user, unauthenticated, wrong size (nothing kept), over the declared size, twice (409)', async () => {
  const alice = await newUser(S, 'ud');
  const eve = await newUser(S, 'ud');
  const bytes = Buffer.from('0123456789');
  const up = await create(alice, bytes.length);
  const before = filesIn(S.uploadsDir).length;
  assertError(await put(S, eve.token, up.id, bytes), 404, 'not_found', 'another user');
  assertError(await put(S, null, up.id, bytes), 401, 'unauthorized', 'no token');
  assertError(await put(S, alice.token, '999999999', bytes), 404, 'not_found', 'unknown');
  assertError(await put(S, alice.token, up.id, Buffer.from('012345678')), 400, 'invalid_request', 'shorter Content-Length');
  assertError(await put(S, alice.token, up.id, Buffer.from('0123456789A')), 400, 'invalid_request', 'longer Content-Length');
  // Chunked: more than declared is cut off and refused; fewer is refused at the end.
  const over = await rawPut(S, alice.token, up.id, 'Transfer-Encoding: chunked\r\n', chunked('012345', '6789AB'));
  assert.equal(over.status, 400, over.text);
  const under = await rawPut(S, alice.token, up.id, 'Transfer-Encoding: chunked\r\n', chunked('0123'));
  assert.equal(under.status, 400, under.text);
  assert.equal(filesIn(S.uploadsDir).length, before, 'nothing kept by any refusal');
  assertError(await get(S, `/api/uploads/${up.id}`, alice.token), 404, 'not_found', 'unfinished: nothing to download');
  // The upload is still pending: a right PUT (chunked this time) finishes it.
  const good = await rawPut(S, alice.token, up.id, 'Transfer-Encoding: chunked\r\n', chunked('01234', '56789'));
  assert.equal(good.status, 200, good.text);
  assert.equal(JSON.parse(good.text.slice(good.text.indexOf('\r\n\r\n') + 4)).sha256, sha(bytes));
  assertError(await put(S, alice.token, up.id, bytes), 409, 'conflict', 'second PUT');
  assert.ok((await get(S, `/api/uploads/${up.id}`, alice.token)).buf.equals(bytes));
});

test('attachment_ids over REST and WebSocket: attachments with a signed url in the answer, new_message, ack and history', async () => {
  const alice = await newUser(S, 'ue');
  const bob = await newUser(S, 'ue');
  const room = await group(alice, [bob]);
  const bSide = await sidebar(S, bob);
  const aRoom = await chatroom(S, alice, room.id);
  const f1 = await uploaded(S, alice, Buffer.from('first file'), { filename: 'one.txt' });
  const f2 = await uploaded(S, alice, Buffer.from('second'), { filename: 'two.bin', content_type: 'application/pdf' });
  const r = await alice.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'files', attachment_ids: [f2.id, f1.id] });
  assertStatus(r, 201, 'send');
  const check = (atts) => {
    assert.equal(atts.length, 2);
    assert.deepEqual(atts.map((a) => a.id), [f2.id, f1.id], 'in the order sent');
    for (const a of atts) {
      assert.deepEqual(Object.keys(a).sort(), ['content_type', 'filename', 'id', 'sha256', 'size', 'url']);
      assert.match(a.url, new RegExp(`^/api/uploads/${a.id}\\?exp=\\d+&sig=[0-9a-f]{64}$`));
    }
    assert.deepEqual({ ...atts[1], url: undefined }, { ...f1, url: undefined });
  };
  check(r.body.attachments);
  const nm = await bSide.next(where('new_message', (e) => e.type === 'new_message' && e.data.id === r.body.id), 3000);
  check(nm.data.attachments);
  const h = await bob.api.get(`/api/chatrooms/${room.id}/messages`);
  check(h.body.messages.at(-1).attachments);
  check((await bob.api.get(`/api/messages/${r.body.id}`)).body.attachments);
  check((await bob.api.get(`/api/chatrooms/${room.id}/first-unread`)).body.message.attachments);
  const latest = (await bob.api.get('/api/messages/latest')).body.latest.find((l) => l.room_id === room.id);
  check(latest.message.attachments);
  check((await bob.api.get(`/api/chatrooms/${room.id}`)).body.last_message.attachments);
  check((await bob.api.get('/api/chatrooms')).body.chatrooms.find((c) => c.id === room.id).last_message.attachments);
  // A message without attachments carries none.
  const plain = await alice.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'plain' });
  assert.equal(plain.body.attachments, undefined);
  // The link works in a browser: no Bearer header.
  const viaLink = await get(S, nm.data.attachments[1].url);
  assert.equal(viaLink.status, 200);
  assert.equal(viaLink.buf.toString(), 'first file');
  // Over WebSocket.
  aRoom.send({ type: 'send_message', data: { content: 'ws file', client_msg_id: 'ws-1', attachment_ids: [f1.id] } });
  const ack = await aRoom.next(where('ack', (e) => e.type === 'ack' && e.data.client_msg_id === 'ws-1'), 3000);
  assert.equal(ack.data.message.attachments[0].id, f1.id);
  assert.match(ack.data.message.attachments[0].url, /sig=/);
  const nm2 = await bSide.next(where('new_message ws', (e) => e.type === 'new_message' && e.data.content === 'ws file'), 3000);
  assert.equal(nm2.data.attachments[0].sha256, f1.sha256);
  aRoom.send({ type: 'send_message', data: { content: 'bad', client_msg_id: 'ws-2', attachment_ids: ['x'] } });
  const err = await aRoom.next(where('error', (e) => e.type === 'error' && e.data.client_msg_id === 'ws-2'), 3000);
  assert.equal(err.data.code, 'invalid_request');
  aRoom.send({ type: 'send_message', data: { content: 'bad', client_msg_id: 'ws-3', attachment_ids: ['123456789'] } });
  const err3 = await aRoom.next(where('error', (e) => e.type === 'error' && e.data.client_msg_id === 'ws-3'), 3000);
  assert.equal(err3.data.code, 'invalid_request');
});

test('attachment_ids refusals: over 10, twice, another user\'s, unfinished, malformed; nothing stored', async () => {
  const alice = await newUser(S, 'uf');
  const bob = await newUser(S, 'uf');
  const room = await group(alice, [bob]);
  const files = [];
  for (let i = 0; i < 11; ++i) files.push(await uploaded(S, alice, Buffer.from(`f${i}`)));
  const send = (ids, who = alice) => who.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'x', attachment_ids: ids });
  assertError(await send(files.map((f) => f.id)), 400, 'invalid_request', '11 attachments');
  assertStatus(await send(files.slice(0, 10).map((f) => f.id)), 201, '10 attachments');
  assertError(await send([files[0].id, files[0].id]), 400, 'invalid_request', 'twice');
  assertError(await send([files[0].id], bob), 400, 'invalid_request', 'another user\'s upload');
  const pending = await create(alice, 5);
  assertError(await send([pending.id]), 400, 'invalid_request', 'unfinished');
  assertError(await send(['nope']), 400, 'invalid_request', 'malformed');
  assertError(await send('x'), 400, 'invalid_request', 'not an array');
  const h = await alice.api.get(`/api/chatrooms/${room.id}/messages`);
  assert.equal(h.body.messages.length, 1, 'only the accepted send is stored');
});

test('downloads only for the uploader and members of a room where it was sent; signed links: wrong or expired → 403', async () => {
  const alice = await newUser(S, 'ug');
  const bob = await newUser(S, 'ug');
  const carol = await newUser(S, 'ug');
  const dave = await newUser(S, 'ug');
  const r1 = await group(alice, [bob, carol], 'one');
  const r2 = await group(alice, [carol], 'two');
  const f = await uploaded(S, alice, Buffer.from('secret'));
  const path = `/api/uploads/${f.id}`;
  assertError(await get(S, path, bob.token), 403, 'forbidden', 'not sent anywhere yet');
  assertStatus(await get(S, path, alice.token), 200, 'the uploader');
  const m = await alice.api.post(`/api/chatrooms/${r1.id}/messages`, { content: 'see', attachment_ids: [f.id] });
  await alice.api.post(`/api/chatrooms/${r2.id}/messages`, { content: 'see too', attachment_ids: [f.id] });
  assertStatus(await get(S, path, bob.token), 200, 'a member');
  assertStatus(await get(S, path, carol.token), 200, 'a member of both');
  assertError(await get(S, path, dave.token), 403, 'forbidden', 'a non-member');
  assertError(await get(S, path), 401, 'unauthorized', 'no token, no link');
  assertError(await get(S, path, 'garbage'), 401, 'unauthorized', 'bad token');
  assertError(await get(S, '/api/uploads/999999999', alice.token), 404, 'not_found', 'unknown');
  // Removed from r1: bob loses access; carol, still in r2 where it was sent too, keeps it.
  assertStatus(await alice.api.del(`/api/chatrooms/${r1.id}/members/${bob.user.id}`), 204, 'remove bob');
  assertStatus(await alice.api.del(`/api/chatrooms/${r1.id}/members/${carol.user.id}`), 204, 'remove carol');
  assertError(await get(S, path, bob.token), 403, 'forbidden', 'a removed member');
  assertStatus(await get(S, path, carol.token), 200, 'still a member of another room where it was sent');
  assertError(await bob.api.get(`/api/messages/${m.body.id}`), 403, 'forbidden', 'the message is gone for bob too');
  // Signed links: a fresh one with every read.
  const url = m.body.attachments[0].url;
  const [, exp, sig] = url.match(/exp=(\d+)&sig=([0-9a-f]+)/);
  assert.ok(Number(exp) * 1000 > Date.now() + 9 * 60000 && Number(exp) * 1000 <= Date.now() + 10 * 60000 + 2000, 'valid for 10 minutes');
  assertStatus(await get(S, url), 200, 'the link, without Bearer');
  const flip = sig.slice(0, -1) + (sig.at(-1) === '0' ? '1' : '0');
  assertError(await get(S, `${path}?exp=${exp}&sig=${flip}`), 403, 'forbidden', 'a wrong signature');
  assertError(await get(S, `${path}?exp=${Number(exp) + 60}&sig=${sig}`), 403, 'forbidden', 'a longer expiry');
  assertError(await get(S, `${path}?exp=${Math.floor(Date.now() / 1000) - 1}&sig=${sig}`), 403, 'forbidden', 'expired');
  assertError(await get(S, `/api/uploads/${f.id - 1}?exp=${exp}&sig=${sig}`), 403, 'forbidden', 'another id');
  assertError(await get(S, `${path}?exp=${exp}`), 403, 'forbidden', 'no signature');
  assertError(await get(S, `${path}?exp=abc&sig=${sig}`), 403, 'forbidden', 'malformed expiry');
});

test('unfinished uploads expire (row and partial file), and partial files left by a crash are removed', async () => {
  const E = await uploadServer(['--upload-ttl-ms', '400']);
  const u = await newUser(E, 'uh');
  const up = await create(u, 4);
  // A partial file left by a crash (an old one) and a fresh unrelated one.
  const stale = join(E.uploadsDir, 'deadbeefdeadbeefdeadbeefdeadbeef.part');
  writeFileSync(stale, 'partial');
  const t = new Date(Date.now() - 60000);
  utimesSync(stale, t, t);
  await sleep(1200);
  assert.equal(existsSync(stale), false, 'the crash leftover is gone');
  assertError(await put(E, u.token, up.id, Buffer.from('abcd')), 404, 'not_found', 'expired: gone');
  // A finished one does not expire.
  const done = await uploaded(E, u, Buffer.from('kept'));
  await sleep(800);
  assertStatus(await get(E, `/api/uploads/${done.id}`, u.token), 200, 'finished uploads stay');
  assert.deepEqual(filesIn(E.uploadsDir).filter((f) => f.endsWith('.part')), []);
});

test('a body that stops arriving is cut after the request timeout and its partial file removed; the upload stays pending', async () => {
  const T = await uploadServer(['--http-request-timeout-ms', '500']);
  const u = await newUser(T, 'uj');
  const up = await create(u, 100);
  const t0 = Date.now();
  const cut = await rawHttp(T.url, Buffer.from(`PUT /api/uploads/${up.id} HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${u.token}\r\nContent-Length: 100\r\n\r\n${'x'.repeat(40)}`), 5000, { untilClose: true });
  const ms = Date.now() - t0;
  assert.equal(cut.closed, true, 'the server closed the connection');
  assert.equal(cut.status, null, 'without an answer');
  assert.ok(ms >= 400 && ms < 3000, `cut after ${ms} ms`);
  await sleep(100);
  assert.deepEqual(filesIn(T.uploadsDir), [], 'the partial file is gone');
  assertStatus(await put(T, u.token, up.id, Buffer.alloc(100, 1)), 200, 'a new PUT of the same upload');
});

// /proc/<pid>/status VmRSS in KiB.
function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

test('a 25 MiB upload and download keep the server\'s memory flat (RSS growth < 8 MiB)', async () => {
  const u = await newUser(S, 'ui');
  const total = 25 * MiB;
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const side = await sidebar(S, u);
  // Warm up the paths once (allocator arenas, statement caches) with a small file.
  await uploaded(S, u, Buffer.alloc(256 * 1024, 1));
  const pid = S.proc.pid;
  const base = rssKiB(pid);
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 20);
  const up = await create(u, total, { filename: 'big.bin', content_type: 'application/octet-stream' });
  const chunk = 256 * 1024;
  const stream = new ReadableStream({
    start(ctl) {
      for (let off = 0; off < total; off += chunk) ctl.enqueue(data.subarray(off, off + chunk));
      ctl.close();
    },
  });
  const started = Date.now();
  const r = await put(S, u.token, up.id, stream);
  const putMs = Date.now() - started;
  assertStatus(r, 200, 'put 25 MiB');
  assert.equal(r.body.sha256, sha(data));
  const afterPut = rssKiB(pid);
  const g = await get(S, `/api/uploads/${up.id}`, u.token);
  clearInterval(sampler);
  const afterGet = rssKiB(pid);
  assert.equal(g.status, 200);
  assert.equal(g.buf.length, total);
  assert.equal(sha(g.buf), sha(data), 'the same 25 MiB back');
  const last = await side.next(where('final', (e) => e.type === 'upload_progress' && e.data.upload_id === up.id && e.data.received === total), 3000);
  assert.equal(last.data.total, total);
  const growth = (peak - base) / 1024;
  console.log(`RSS base ${(base / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (growth ${growth.toFixed(1)} MiB), ` +
    `after PUT ${(afterPut / 1024).toFixed(1)} MiB, after GET ${(afterGet / 1024).toFixed(1)} MiB; PUT took ${putMs} ms; ` +
    `${progressOf(side, up.id).length} progress events`);
  // Under a sanitizer (ASan's quarantine keeps freed memory, TSan's shadow grows) RSS says
  // nothing of the server's own memory: the bound is checked on the plain build only.
  const sanitized = /lib[at]san/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  if (!sanitized) assert.ok(growth < 8, `RSS grew by ${growth.toFixed(1)} MiB during a 25 MiB upload and download`);
});
