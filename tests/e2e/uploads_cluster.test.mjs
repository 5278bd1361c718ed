// Attachments across two `parley serve` instances on ONE PostgreSQL database, ONE Redis bus and
// ONE shared uploads directory (docs/decisions.md "Attachments"): uploaded and sent via A,
// downloaded via B (Bearer and the signed link A made: both instances derive the same link key
// from the shared JWT key), new_message with its attachments on B, upload_progress reaching the
// uploader's socket on B, a PUT of the same upload on both instances at once refused on one
// (409), and a removed member refused on B. Run with PARLEY_TEST_DB=postgres (CTest's
// e2e_pg_uploads_cluster) — skipped otherwise, and when redis-server is not installed.
// Run: cd build/test && ctest -R 'postgres_start|e2e_pg_uploads_cluster|postgres_stop'
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { client, newUser } from './lib/server.mjs';
import { sleep, assertStatus, assertError } from './lib/rest-helpers.mjs';
import { open, where } from './lib/ws-client.mjs';
import { usePair } from './lib/cluster.mjs';

const sha = (buf) => createHash('sha256').update(buf).digest('hex');
let A, B;
const pair = usePair('upc', (dir) => {
  mkdirSync(join(dir, 'shared-uploads'));
  return ['--ws-cooldown-ms', '0', '--uploads-dir', join(dir, 'shared-uploads')];
}, (p) => ({ A, B } = p));
const { skip, track } = pair;
const user = pair.user;

async function put(srv, token, id, body) {
  const res = await fetch(`${srv.url}/api/uploads/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body, duplex: 'half' });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}
async function get(srv, path, token) {
  const res = await fetch(srv.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const buf = Buffer.from(await res.arrayBuffer());
  let body = null;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(buf.toString());
  return { status: res.status, buf, body, headers: res.headers };
}

test('uploaded and sent via A, downloaded via B; progress reaches the uploader\'s socket on B', { skip }, async () => {
  const alice = await newUser(A, 'ka');
  const bob = await newUser(A, 'kb');
  const dave = await newUser(A, 'kd');
  const room = (await alice.api.post('/api/chatrooms', { name: 'c', member_ids: [bob.user.id] })).body;
  const aliceOnB = track(await open(B.url, `/ws?token=${alice.token}`));
  const bobOnB = track(await open(B.url, `/ws?token=${bob.token}`));
  const total = 2 * 1024 * 1024;
  const bytes = randomBytes(total);
  const up = (await alice.api.post('/api/uploads', { filename: 'shared.bin', content_type: 'application/octet-stream', size: total })).body;
  const stream = new ReadableStream({
    async start(ctl) {
      for (let off = 0; off < total; off += 128 * 1024) {
        ctl.enqueue(bytes.subarray(off, off + 128 * 1024));
        await sleep(25);
      }
      ctl.close();
    },
  });
  const r = await put(A, alice.token, up.id, stream);
  assertStatus(r, 200, 'PUT via A');
  assert.equal(r.body.sha256, sha(bytes));
  const last = await aliceOnB.next(where('final progress on B', (e) => e.type === 'upload_progress' && e.data.received === total), 5000);
  assert.deepEqual(last.data, { upload_id: up.id, received: total, total });
  assert.ok(aliceOnB.all.filter((e) => e.type === 'upload_progress').length >= 2, 'intermediate progress on B too');
  assert.equal(bobOnB.all.filter((e) => e.type === 'upload_progress').length, 0, 'not to another user');

  const m = await alice.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'via A', attachment_ids: [up.id] });
  assertStatus(m, 201, 'send via A');
  const nm = await bobOnB.next(where('new_message on B', (e) => e.type === 'new_message' && e.data.id === m.body.id), 5000);
  assert.equal(nm.data.attachments[0].id, up.id);
  // Bearer on B, the link A signed on B (no Bearer), the link B renders on B.
  const viaBearer = await get(B, `/api/uploads/${up.id}`, bob.token);
  assert.equal(viaBearer.status, 200);
  assert.equal(sha(viaBearer.buf), sha(bytes));
  const viaLinkFromA = await get(B, m.body.attachments[0].url);
  assert.equal(viaLinkFromA.status, 200);
  assert.equal(sha(viaLinkFromA.buf), sha(bytes));
  const hist = await client(B.url, bob.token).get(`/api/chatrooms/${room.id}/messages`);
  assert.equal((await get(B, hist.body.messages.at(-1).attachments[0].url)).status, 200, 'a link rendered by B');
  assertError(await get(B, `/api/uploads/${up.id}`, dave.token), 403, 'forbidden', 'a non-member on B');
  assertStatus(await alice.api.del(`/api/chatrooms/${room.id}/members/${bob.user.id}`), 204, 'remove bob');
  assertError(await get(B, `/api/uploads/${up.id}`, bob.token), 403, 'forbidden', 'a removed member on B');
});

test('a PUT of one upload on both instances at once: one stores it, the other is refused', { skip }, async () => {
  const alice = await newUser(A, 'kc');
  const total = 1024 * 1024;
  const bytes = randomBytes(total);
  const up = (await alice.api.post('/api/uploads', { filename: 'race.bin', content_type: 'application/octet-stream', size: total })).body;
  const slow = () => new ReadableStream({
    async start(ctl) {
      for (let off = 0; off < total; off += 64 * 1024) {
        ctl.enqueue(bytes.subarray(off, off + 64 * 1024));
        await sleep(20);
      }
      ctl.close();
    },
  });
  const first = put(A, alice.token, up.id, slow());
  await sleep(150);
  const second = await put(B, alice.token, up.id, slow());
  assertError(second, 409, 'conflict', 'the second, while the first streams');
  assertStatus(await first, 200, 'the first');
  assert.equal(sha((await get(B, `/api/uploads/${up.id}`, alice.token)).buf), sha(bytes));
});
