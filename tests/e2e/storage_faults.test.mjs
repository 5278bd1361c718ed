// Storage faults end to end (CONTRACT.md: 503 `unavailable` with Retry-After for faults
// outside the client's control; /readyz 503 within 5 s of writes failing and 200 within 5 s
// of a write succeeding; docs/decisions.md "Storage faults"):
//  1. disk full: the database on a real 3 MiB tmpfs, filled by sends until they get 503
//     (never 500); /readyz 503; the tmpfs grows (remount) and /readyz is 200 again without
//     any client write; every acknowledged message is in history, seq 1..N, no gap;
//     PRAGMA integrity_check passes.
//  2. read-only: a filesystem that turns read-only under the running server (ext4 on a loop
//     device with errors=remount-ro; `mount -o remount,ro` is refused while the server holds
//     the files open for writing); recovery is the operator's (fsck, mount, restart).
//  3. the lock held by another process (the sqlite3 CLI in BEGIN EXCLUSIVE).
//  4. the database file moved away while open, and moved back.
// 1 and 2 need root (mount); they are skipped, with the reason printed, where they cannot run.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/storage_faults.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { startServer, newUser, client } from './lib/server.mjs';
import { sleep } from './lib/rest-helpers.mjs';
import { open } from './lib/ws-client.mjs';

before(() => { process.env.PARLEY_TEST_LOG_LEVEL = 'info'; }); // the tests count the log lines

const show = (res) => `${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`;
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...opts });
const have = (cmd) => run('sh', ['-c', `command -v ${cmd}`]).status === 0;

// Why mounting cannot work here, or null when it can (a throwaway tmpfs is tried).
function mountSkipReason() {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const dir = mkdtempSync(join(tmpdir(), 'parley-mountcheck-'));
  try {
    const r = run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    if (r.status !== 0) return `mount -t tmpfs failed: ${(r.stderr || '').trim()}`;
    run('umount', [dir]);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const MOUNT_SKIP = mountSkipReason();
const SQLITE_SKIP = have('sqlite3') ? null : 'the sqlite3 CLI is not installed (scripts/install-deps.sh)';
const EXT4_SKIP = MOUNT_SKIP ?? SQLITE_SKIP ??
  (have('mkfs.ext4') && have('losetup') ? null : 'mkfs.ext4 / losetup are not installed');
for (const [what, why] of [['tmpfs / ext4 tests', MOUNT_SKIP], ['sqlite3 CLI tests', SQLITE_SKIP], ['ext4 test', EXT4_SKIP]])
  if (why) console.log(`# skipping the ${what}: ${why}`);

function mustRun(cmd, args) {
  const r = run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function unmount(dir) {
  if (run('umount', [dir]).status !== 0) run('umount', ['-l', dir]);
}

// PRAGMA integrity_check and the number of messages, through the sqlite3 CLI.
function inspectDb(dbPath) {
  const integrity = mustRun('sqlite3', [dbPath, 'PRAGMA integrity_check;']).trim();
  const count = Number(mustRun('sqlite3', [dbPath, 'SELECT count(*) FROM messages;']).trim());
  return { integrity, count };
}

// Polls fn() every 50 ms until it returns true; returns the milliseconds it took, or throws.
async function within(ms, what, fn) {
  const start = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}
const readyz = async (S) => (await client(S.url).get('/readyz')).status;
const metric = async (S, name) => {
  const text = (await client(S.url).get('/metrics')).body;
  const m = String(text).match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

// A 503 of the contract: code `unavailable`, a Retry-After.
function assertUnavailable(res, what) {
  assert.equal(res.status, 503, `${what}: ${show(res)}`);
  assert.equal(res.body?.error?.code, 'unavailable', `${what}: ${show(res)}`);
  assert.equal(typeof res.body.error.message, 'string');
  assert.match(res.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After`);
}

// Pages through a room's whole history.
async function history(api, roomId) {
  const out = [];
  for (let after = 0; ;) {
    const res = await api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assert.equal(res.status, 200, `history: ${show(res)}`);
    out.push(...res.body.messages);
    if (!res.body.has_more) return out;
    after = res.body.messages.at(-1).seq;
  }
}

// Every acknowledged message is there, in seq order 1..N with no gap, and nothing else.
function assertHistory(msgs, acked, what) {
  msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `${what}: seq at position ${i}`));
  const byId = new Map(msgs.map((m) => [m.id, m]));
  for (const a of acked) {
    const m = byId.get(a.id);
    assert.ok(m, `${what}: acknowledged message ${a.id} (seq ${a.seq}) is missing`);
    assert.equal(m.seq, a.seq);
    assert.equal(m.content, a.content);
  }
  assert.equal(msgs.length, acked.length, `${what}: nothing but the acknowledged messages`);
}

// Log lines of the storage-fault reporter (the server logs at info in this file).
function storageLines(stderr) {
  return stderr.split('\n').filter((l) => /storage (unavailable|still unavailable|faults|recovered)/.test(l));
}

// During a fault: /readyz stays 503 across several probes (no flapping), and the log has the
// outage's first line and no recovery line.
async function assertStaysDown(S, what) {
  for (let i = 0; i < 25; i++) { assert.equal(await readyz(S), 503, `${what}: /readyz sample ${i}`); await sleep(100); }
  const lines = storageLines(S.stderr);
  assert.equal(lines.filter((l) => /storage unavailable/.test(l)).length, 1, `${what}:\n${lines.join('\n')}`);
  assert.equal(lines.filter((l) => /storage recovered/.test(l)).length, 0, `${what}: no recovery yet:\n${lines.join('\n')}`);
}

// A user, a room, a chatroom socket, and a few acknowledged messages.
async function seed(S, n) {
  const a = await newUser(S, 'sf');
  const room = await a.api.post('/api/chatrooms', { name: 'faults', member_ids: [] });
  assert.equal(room.status, 201, show(room));
  const acked = [];
  for (let i = 0; i < n; i++) {
    const content = `before ${i}`;
    const r = await a.api.post(`/api/chatrooms/${room.body.id}/messages`, { content, client_msg_id: `b-${i}` });
    assert.equal(r.status, 201, show(r));
    acked.push({ id: r.body.id, seq: r.body.seq, content });
  }
  const ws = await open(S.url, `/api/ws?token=${a.token}&room_id=${room.body.id}`);
  // Replies wait for the socket's catch-up read: a pong means it is done, before any fault.
  ws.send({ type: 'ping', data: { timestamp: 1 } });
  await ws.next('pong');
  return { a, roomId: room.body.id, acked, ws };
}

// What a client sees during a fault: sends and registers 503, WebSocket `unavailable`.
async function assertRefusesWrites(S, ctx, tag) {
  const send = await ctx.a.api.post(`/api/chatrooms/${ctx.roomId}/messages`, { content: `${tag} refused`, client_msg_id: `${tag}-r` });
  assertUnavailable(send, `${tag}: send`);
  const reg = await client(S.url).post('/api/auth/register', { username: `${tag}x${Date.now() % 100000}`, password: 'password123' });
  assertUnavailable(reg, `${tag}: register`);
  const reply = await ctx.ws.request({ room_id: ctx.roomId, content: `${tag} ws refused`, client_msg_id: `${tag}-ws` }, 15000);
  assert.equal(reply.type, 'error', `${tag}: WS send → ${JSON.stringify(reply)}`);
  assert.equal(reply.data.code, 'unavailable', `${tag}: WS send → ${JSON.stringify(reply)}`);
  assert.equal(reply.data.client_msg_id, `${tag}-ws`);
}

// After recovery: REST and WS sends work and are acknowledged.
async function assertWritesWork(ctx, tag) {
  const content = `${tag} after`;
  const r = await ctx.a.api.post(`/api/chatrooms/${ctx.roomId}/messages`, { content, client_msg_id: `${tag}-a` });
  assert.equal(r.status, 201, `${tag}: send after recovery: ${show(r)}`);
  ctx.acked.push({ id: r.body.id, seq: r.body.seq, content });
  const wsContent = `${tag} ws after`;
  const ack = await ctx.ws.request({ room_id: ctx.roomId, content: wsContent, client_msg_id: `${tag}-wsa` });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  ctx.acked.push({ id: ack.data.message.id, seq: ack.data.message.seq, content: wsContent });
}

test('disk full on a 3 MiB tmpfs: 503 unavailable (never 500), /readyz follows, recovery without a restart or a client write, nothing acknowledged lost',
  { skip: MOUNT_SKIP ?? SQLITE_SKIP ?? false, timeout: 180000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-full-'));
    mustRun('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir]);
    let S;
    try {
      S = await startServer({ dir, args: ['--ws-cooldown-ms', '0'] });
      const ctx = await seed(S, 3);
      const api = ctx.a.api;
      // Fill it: large messages first, then small ones, then registrations, until each gets
      // 503 — so that no write of any size still fits.
      const refuseAfter = async (label, max, attempt) => {
        for (let i = 0; i < max; i++) {
          const res = await attempt(i);
          if (res.status === 503) { assertUnavailable(res, `${label} ${i}`); return i; }
          assert.ok(res.status === 201, `${label} ${i}: only 201 or 503, got ${show(res)}`);
        }
        throw new Error(`${label}: still accepted after ${max}`);
      };
      const big = 'x'.repeat(12000);
      let n = 0;
      const send = (content) => async () => {
        const cmid = `f-${n++}`;
        const res = await api.post(`/api/chatrooms/${ctx.roomId}/messages`, { content, client_msg_id: cmid });
        if (res.status === 201) ctx.acked.push({ id: res.body.id, seq: res.body.seq, content });
        return res;
      };
      const bigSends = await refuseAfter('big send', 2000, (i) => send(`${i} ${big}`)());
      const firstFailure = Date.now();
      const readyIn = await within(5000, '/readyz 503 after the first refused write', async () => (await readyz(S)) === 503);
      await refuseAfter('small send', 500, (i) => send(`small ${i}`)());
      await refuseAfter('register', 200, (i) => client(S.url).post('/api/auth/register', { username: `full${i}_${Date.now() % 10000}`, password: 'password123' }));
      console.log(`# ${bigSends} large sends filled it; /readyz 503 ${readyIn} ms after the first 503 (${Date.now() - firstFailure} ms ago)`);
      await assertRefusesWrites(S, ctx, 'full');
      // Reads do not need space: history answers, and holds everything acknowledged.
      assertHistory(await history(api, ctx.roomId), ctx.acked, 'during the fault');
      // The probe finds no room either: /readyz stays 503, no flapping.
      await assertStaysDown(S, 'disk full');
      assert.equal(await metric(S, 'parley_storage_healthy'), 0);
      assert.ok((await metric(S, 'parley_storage_faults_total')) >= 3);

      mustRun('mount', ['-o', 'remount,size=64m', dir]);
      const recovered = await within(5000, '/readyz 200 after the tmpfs grew (no client write)', async () => (await readyz(S)) === 200);
      console.log(`# /readyz 200 ${recovered} ms after the tmpfs grew`);
      assert.equal(await metric(S, 'parley_storage_healthy'), 1);
      await assertWritesWork(ctx, 'full');
      assertHistory(await history(api, ctx.roomId), ctx.acked, 'after recovery');

      const lines = storageLines(S.stderr);
      assert.equal(lines.filter((l) => /storage unavailable/.test(l)).length, 1, lines.join('\n'));
      assert.equal(lines.filter((l) => /storage recovered/.test(l)).length, 1, lines.join('\n'));
      assert.ok(lines.length <= 4, `a few lines, not one per request:\n${lines.join('\n')}`);
      assert.ok(!/unexpected error|internal/.test(S.stderr), 'no 500 path taken');
      await ctx.ws.close();
      assert.deepEqual(await S.stop(), { code: 0, signal: null });
      const db = inspectDb(join(dir, 'parley.db'));
      assert.equal(db.integrity, 'ok');
      assert.equal(db.count, ctx.acked.length);
    } finally {
      await S?.stop();
      unmount(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('a filesystem that turns read-only under the server: 503 unavailable, /readyz 503, reads answer; after fsck and a restart everything acknowledged is there',
  { skip: EXT4_SKIP ?? false, timeout: 180000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'parley-ro-'));
    const img = join(work, 'fs.img');
    const dir = join(work, 'mnt');
    mustRun('mkdir', [dir]);
    mustRun('truncate', ['-s', '32M', img]);
    mustRun('mkfs.ext4', ['-q', '-F', img]);
    let S;
    let mounted = false;
    try {
      const m = run('mount', ['-o', 'loop,errors=remount-ro', img, dir]);
      if (m.status !== 0) { console.log(`# skipped: cannot loop-mount ext4: ${m.stderr.trim()}`); return; }
      mounted = true;
      S = await startServer({ dir, args: ['--ws-cooldown-ms', '0'] });
      const ctx = await seed(S, 5);
      // The kernel's own way to a read-only filesystem: an ext4 error with errors=remount-ro.
      const dev = basename(mustRun('findmnt', ['-n', '-o', 'SOURCE', dir]).trim());
      writeFileSync(`/sys/fs/ext4/${dev}/trigger_fs_error`, 'parley storage fault test');
      assert.match(mustRun('findmnt', ['-n', '-o', 'OPTIONS', dir]), /emergency_ro|(^|,)ro(,|$)/, 'the filesystem is read-only now');
      await assertRefusesWrites(S, ctx, 'ro');
      const readyIn = await within(5000, '/readyz 503', async () => (await readyz(S)) === 503);
      console.log(`# read-only: /readyz 503 ${readyIn} ms after the refused writes`);
      await assertStaysDown(S, 'read-only');
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'read-only, reads');
      await ctx.ws.close();
      assert.deepEqual(await S.stop(), { code: 0, signal: null });
      S = undefined;
      // The operator's recovery: unmount, fsck, mount, restart.
      unmount(dir);
      mounted = false;
      const fsck = run('e2fsck', ['-fy', img]);
      assert.ok(fsck.status === 0 || fsck.status === 1, `e2fsck: ${fsck.status} ${fsck.stderr}`);
      mustRun('mount', ['-o', 'loop', img, dir]);
      mounted = true;
      S = await startServer({ dir, args: ['--ws-cooldown-ms', '0'] });
      assert.equal(await readyz(S), 200);
      ctx.ws = await open(S.url, `/api/ws?token=${ctx.a.token}&room_id=${ctx.roomId}`);
      ctx.a.api = client(S.url, ctx.a.token);
      await assertWritesWork(ctx, 'ro');
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'after the restart');
      await ctx.ws.close();
      assert.deepEqual(await S.stop(), { code: 0, signal: null });
      S = undefined;
      const db = inspectDb(join(dir, 'parley.db'));
      assert.equal(db.integrity, 'ok');
      assert.equal(db.count, ctx.acked.length);
    } finally {
      await S?.stop();
      if (mounted) unmount(dir);
      rmSync(work, { recursive: true, force: true });
    }
  });

test('the database locked by another process (sqlite3 BEGIN EXCLUSIVE): 503 after the busy timeout, reads answer, /readyz 200 again once the lock is released',
  { skip: SQLITE_SKIP ?? false, timeout: 120000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-lock-'));
    let S;
    let cli;
    try {
      S = await startServer({ dir, args: ['--ws-cooldown-ms', '0', '--db-busy-timeout-ms', '1000'] });
      const ctx = await seed(S, 3);
      const dbPath = join(dir, 'parley.db');
      cli = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      cli.stdout.on('data', (d) => { out += d; });
      cli.stderr.on('data', (d) => { out += d; });
      cli.stdin.write(".timeout 5000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n");
      await within(5000, 'the sqlite3 CLI holds the lock', async () => out.includes('locked'));
      const start = Date.now();
      const res = await ctx.a.api.post(`/api/chatrooms/${ctx.roomId}/messages`, { content: 'blocked', client_msg_id: 'l-1' });
      const waited = Date.now() - start;
      assertUnavailable(res, 'send while locked');
      assert.ok(waited >= 900, `the send waited for the busy timeout (${waited} ms)`);
      const readyIn = await within(5000, '/readyz 503', async () => (await readyz(S)) === 503);
      console.log(`# locked: send refused after ${waited} ms; /readyz 503 ${readyIn} ms later`);
      await assertRefusesWrites(S, ctx, 'lock');
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'locked, reads');
      await assertStaysDown(S, 'locked');
      cli.stdin.write('COMMIT;\n.quit\n');
      await new Promise((r) => cli.on('exit', r));
      cli = undefined;
      const released = Date.now();
      const back = await within(5000, '/readyz 200 after the lock was released', async () => (await readyz(S)) === 200);
      console.log(`# /readyz 200 ${back} ms after the lock was released (${Date.now() - released} ms)`);
      await assertWritesWork(ctx, 'lock');
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'after the lock');
      await ctx.ws.close();
      assert.deepEqual(await S.stop(), { code: 0, signal: null });
      const db = inspectDb(dbPath);
      assert.equal(db.integrity, 'ok');
      assert.equal(db.count, ctx.acked.length);
    } finally {
      cli?.kill('SIGKILL');
      await S?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('the database file moved away while open: 503 unavailable (nothing committed into the moved file), back at its path → 200 again',
  { skip: SQLITE_SKIP ?? false, timeout: 120000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-moved-'));
    let S;
    try {
      S = await startServer({ dir, args: ['--ws-cooldown-ms', '0'] });
      const ctx = await seed(S, 3);
      const dbPath = join(dir, 'parley.db');
      renameSync(dbPath, `${dbPath}.moved`);
      await assertRefusesWrites(S, ctx, 'moved');
      await within(5000, '/readyz 503', async () => (await readyz(S)) === 503);
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'moved, reads');
      assert.ok(!existsSync(dbPath), 'no new database was created at the path');
      await assertStaysDown(S, 'moved');
      renameSync(`${dbPath}.moved`, dbPath);
      const back = await within(5000, '/readyz 200 once the file is back', async () => (await readyz(S)) === 200);
      console.log(`# moved back: /readyz 200 after ${back} ms`);
      await assertWritesWork(ctx, 'moved');
      assertHistory(await history(ctx.a.api, ctx.roomId), ctx.acked, 'after moving back');
      await ctx.ws.close();
      assert.deepEqual(await S.stop(), { code: 0, signal: null });
      const db = inspectDb(dbPath);
      assert.equal(db.integrity, 'ok');
      assert.equal(db.count, ctx.acked.length);
    } finally {
      await S?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
