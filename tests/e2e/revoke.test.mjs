// Token revocation (CONTRACT.md "Auth"): logout and password change revoke every earlier token
// of the caller — 401 on REST and before both WebSocket upgrades, open sockets closed with
// 1008 `token revoked` within 2 s — while a fresh login works at once; and a token names its
// database, so a token of another database (same key) is refused.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/revoke.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer, client, newUser, ON_POSTGRES, psql, pgDatabase } from './lib/server.mjs';
import { useSuite, NO_COOLDOWN } from './lib/suite.mjs';
import { assertError, assertStatus, decodePart } from './lib/rest-helpers.mjs';
import { open, probeUpgrade } from './lib/ws-client.mjs';

const { server, track } = useSuite();
let S;
before(async () => { S = await server(NO_COOLDOWN); });

const PASSWORD = 'password123'; // newUser's

async function login(url, username, password) {
  return client(url).post('/api/auth/login', { username, password });
}

// A user with a group room and both kinds of socket open.
async function userWithSockets(prefix) {
  const u = await newUser(S, prefix);
  const room = await u.api.post('/api/chatrooms', { name: `${prefix} room`, member_ids: [] });
  assertStatus(room, 201);
  u.room = room.body.id;
  u.sidebar = track(await open(S.url, `/ws?token=${u.token}`));
  u.chatroom = track(await open(S.url, `/api/ws?token=${u.token}&room_id=${u.room}`));
  return u;
}

// What a revoked token gets everywhere: 401 on REST, 401 before each upgrade.
async function assertRevokedEverywhere(u, token, what) {
  assertError(await client(S.url, token).get('/api/me'), 401, 'unauthorized', `${what}: GET /api/me`);
  assertError(await client(S.url, token).get('/api/chatrooms'), 401, 'unauthorized', `${what}: GET /api/chatrooms`);
  for (const path of [`/ws?token=${token}`, `/api/ws?token=${token}&room_id=${u.room}`]) {
    const r = await probeUpgrade(S.url, path);
    assert.equal(r.status, 401, `${what}: ${path.split('?')[0]} upgrade`);
    assert.equal(r.body.error.code, 'unauthorized', `${what}: ${path.split('?')[0]} body`);
  }
  const bearer = await probeUpgrade(S.url, '/ws', { Authorization: `Bearer ${token}` });
  assert.equal(bearer.status, 401, `${what}: /ws with Authorization: Bearer`);
}

// Both sockets closed 1008 `token revoked`, within 2 s of `since`.
async function assertClosedRevoked(u, since) {
  for (const [name, c] of [['sidebar', u.sidebar], ['chatroom', u.chatroom]]) {
    const info = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r(null), 3000))]);
    assert.ok(info, `${name} socket closed`);
    assert.equal(info.code, 1008, `${name} close code`);
    assert.equal(info.reason, 'token revoked', `${name} close reason`);
    assert.ok(Date.now() - since < 2000, `${name} closed within 2 s (${Date.now() - since} ms)`);
  }
}

test('tokens carry the database id and the token version', async () => {
  const u = await newUser(S, 'rvc');
  const claims = decodePart(u.token.split('.')[1]);
  assert.match(claims.db, /^[0-9a-f]{32}$/);
  assert.equal(claims.ver, 0);
  const again = await login(S.url, u.user.username, PASSWORD);
  assert.equal(decodePart(again.body.token.split('.')[1]).db, claims.db, 'one database, one id');
});

test('logout → 204; every earlier token 401 on REST and both upgrades; open sockets closed 1008 within 2 s; a fresh login works at once', async () => {
  const u = await userWithSockets('rvl');
  const second = await login(S.url, u.user.username, PASSWORD); // another device's token
  assertStatus(second, 200);
  const other = await userWithSockets('rvo'); // someone else: untouched
  assertStatus(await u.api.get('/api/me'), 200, 'before logout');

  const t0 = Date.now();
  const r = await u.api.post('/api/auth/logout');
  assertStatus(r, 204, 'logout');
  assert.equal(r.body, null, 'no body');

  await assertRevokedEverywhere(u, u.token, 'the logged-out token');
  await assertRevokedEverywhere(u, second.body.token, 'the other device\'s token');
  await assertClosedRevoked(u, t0);
  assertError(await u.api.post('/api/auth/logout'), 401, 'unauthorized', 'a second logout with the same token');

  // A fresh login right after: its token works on REST and on both endpoints.
  const fresh = await login(S.url, u.user.username, PASSWORD);
  assertStatus(fresh, 200, 'login after logout');
  assert.equal(decodePart(fresh.body.token.split('.')[1]).ver, 1);
  const me = await client(S.url, fresh.body.token).get('/api/me');
  assertStatus(me, 200, 'fresh token on REST');
  assert.equal(me.body.id, u.user.id);
  const sb = track(await open(S.url, `/ws?token=${fresh.body.token}`));
  const cr = track(await open(S.url, `/api/ws?token=${fresh.body.token}&room_id=${u.room}`));
  assert.equal(sb.connected.type, 'connected');
  assert.equal(cr.connected.type, 'connected');

  // The other user's sockets and token were not touched.
  assertStatus(await other.api.get('/api/me'), 200, 'another user');
  assert.equal(other.sidebar.closeInfo, null, 'another user\'s sidebar stays open');
  assert.equal(other.chatroom.closeInfo, null, 'another user\'s chatroom socket stays open');
  const ping = { type: 'ping', data: { timestamp: 1 } };
  other.sidebar.send(ping);
  assert.equal((await other.sidebar.next('pong')).data.timestamp, 1);
  // The fresh sockets are live too (not closed by the revocation that came before them).
  sb.send(ping);
  assert.equal((await sb.next('pong')).data.timestamp, 1);
  assert.equal(cr.closeInfo, null);
});

test('logout without a token or with a bad one → 401', async () => {
  assertError(await client(S.url).post('/api/auth/logout'), 401, 'unauthorized');
  assertError(await client(S.url, 'garbage').post('/api/auth/logout'), 401, 'unauthorized');
});

test('password change: wrong old → 403, bad new → 400, bad body → 400; nothing revoked by a refused change', async () => {
  const u = await newUser(S, 'rvp');
  const cases = [
    [{ old_password: 'wrong-password', new_password: 'newpassword1' }, 403, 'forbidden', 'wrong old password'],
    [{ old_password: PASSWORD, new_password: 'short' }, 400, null, 'new password of 5 bytes'],
    [{ old_password: PASSWORD, new_password: 'x'.repeat(129) }, 400, null, 'new password of 129 bytes'],
    [{ old_password: PASSWORD }, 400, null, 'no new_password'],
    [{ new_password: 'newpassword1' }, 400, null, 'no old_password'],
    [{ old_password: PASSWORD, new_password: 12345678 }, 400, null, 'new_password a number'],
    ['not json', 400, null, 'malformed JSON'],
  ];
  for (const [body, status, code, what] of cases) {
    const r = await u.api.post('/api/auth/password', body);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body?.error?.code, 'string', `${what}: error shape`);
    assert.equal(typeof r.body?.error?.message, 'string', `${what}: error shape`);
    if (code) assert.equal(r.body.error.code, code, what);
  }
  assertStatus(await u.api.get('/api/me'), 200, 'the token still works');
  assertStatus(await login(S.url, u.user.username, PASSWORD), 200, 'the old password still logs in');
  assertError(await client(S.url).post('/api/auth/password', { old_password: PASSWORD, new_password: 'newpassword1' }),
    401, 'unauthorized', 'without a token');
});

test('password change → 204: the new hash is stored, the old password no longer logs in, earlier tokens and sockets are revoked', async () => {
  const u = await userWithSockets('rvq');
  const t0 = Date.now();
  const r = await u.api.post('/api/auth/password', { old_password: PASSWORD, new_password: 'brand-new-pass' });
  assertStatus(r, 204, 'password change');
  await assertRevokedEverywhere(u, u.token, 'the token used for the change');
  await assertClosedRevoked(u, t0);
  assertError(await login(S.url, u.user.username, PASSWORD), 401, 'invalid_credentials', 'old password');
  const fresh = await login(S.url, u.user.username, 'brand-new-pass');
  assertStatus(fresh, 200, 'new password');
  assertStatus(await client(S.url, fresh.body.token).get('/api/me'), 200, 'its token works at once');
  const sb = track(await open(S.url, `/ws?token=${fresh.body.token}`));
  assert.equal(sb.connected.type, 'connected');
  // And the new password can be changed again with the fresh token.
  assertStatus(await client(S.url, fresh.body.token).post('/api/auth/password',
    { old_password: 'brand-new-pass', new_password: 'third-password' }), 204);
  assertStatus(await login(S.url, u.user.username, 'third-password'), 200);
});

test('a token of another database is 401 everywhere, even with the same key and the same user id', async () => {
  const dirs = [];
  const servers = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const d of dirs) {
      rmSync(d, { recursive: true, force: true });
      if (ON_POSTGRES) psql(`DROP DATABASE IF EXISTS ${pgDatabase(d)} WITH (FORCE)`);
    }
  });
  const keyDir = mkdtempSync(join(tmpdir(), 'parley-key-'));
  dirs.push(keyDir);
  const key = join(keyDir, 'jwt.key');
  writeFileSync(key, randomBytes(32).toString('hex'));
  const start = async (dir) => {
    const s = await startServer({ dir, args: ['--jwt-secret-file', key, ...NO_COOLDOWN] });
    servers.push(s);
    return s;
  };
  const register = async (s) => {
    const r = await client(s.url).post('/api/auth/register', { username: 'same_name', password: PASSWORD });
    assertStatus(r, 201);
    return r.body;
  };

  // Database A: the first user.
  const dirA = mkdtempSync(join(tmpdir(), 'parley-test-'));
  dirs.push(dirA);
  let A = await start(dirA);
  const fromA = await register(A);
  assertStatus(await client(A.url, fromA.token).get('/api/me'), 200);
  await A.stop();

  // Database B, same key, a first user with the same id and name: A's token is refused.
  const dirB = mkdtempSync(join(tmpdir(), 'parley-test-'));
  dirs.push(dirB);
  const B = await start(dirB);
  const fromB = await register(B);
  assert.equal(fromB.user.id, fromA.user.id, 'the same user id in both databases');
  assertError(await client(B.url, fromA.token).get('/api/me'), 401, 'unauthorized', 'REST');
  assert.equal((await probeUpgrade(B.url, `/ws?token=${fromA.token}`)).status, 401, '/ws');
  const room = await client(B.url, fromB.token).post('/api/chatrooms', { name: 'r', member_ids: [] });
  assert.equal((await probeUpgrade(B.url, `/api/ws?token=${fromA.token}&room_id=${room.body.id}`)).status, 401,
    '/api/ws');
  assertStatus(await client(B.url, fromB.token).get('/api/me'), 200, 'B\'s own token works');

  // Database A replaced in place (file deleted or database dropped, key kept): A's old token
  // is refused there too.
  if (ON_POSTGRES) {
    psql(`DROP DATABASE ${pgDatabase(dirA)} WITH (FORCE)`);
  } else {
    rmSync(join(dirA, 'parley.db'), { force: true });
    rmSync(join(dirA, 'parley.db-wal'), { force: true });
    rmSync(join(dirA, 'parley.db-shm'), { force: true });
  }
  A = await start(dirA);
  await register(A);
  assertError(await client(A.url, fromA.token).get('/api/me'), 401, 'unauthorized', 'replaced database');
});

test('--allow-insecure-sidebar: a user_id sidebar of the user is closed by a revocation too (it has no token to keep)', async () => {
  const I = await server(['--allow-insecure-sidebar', ...NO_COOLDOWN]);
  const u = await newUser(I, 'rvi');
  const insecure = track(await open(I.url, `/ws?user_id=${u.user.id}`));
  const t0 = Date.now();
  assertStatus(await u.api.post('/api/auth/logout'), 204);
  const info = await Promise.race([insecure.closed, new Promise((r) => setTimeout(() => r(null), 3000))]);
  assert.ok(info, 'closed');
  assert.deepEqual(info, { code: 1008, reason: 'token revoked' });
  assert.ok(Date.now() - t0 < 2000, 'within 2 s');
  assert.equal((await probeUpgrade(I.url, `/ws?token=${u.token}`)).status, 401, 'the token is revoked');
});
