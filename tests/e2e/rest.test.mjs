// REST integration tests: every route of the contract (../../../shared/CONTRACT.md, REST
// section) and the choices in docs/decisions.md, against a real `parley serve`.
// Run: PARLEY_BIN=build/test/parley node --test tests/e2e/rest.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, client, newUser } from './lib/server.mjs';
import {
  TIME_RE, ID_RE, sleep, raw, assertError, assertStatus, assertUser, assertMessage, assertRoom,
  memberIds, assertLike, b64url, b64urlJson, decodePart, signJwt, hmacOk, rawHttp, retryShed, sendOk,
} from './lib/rest-helpers.mjs';

// The server's HS256 key: the file holds KEY plus a trailing newline, which the server drops.
const KEY = `k${randomBytes(24).toString('hex')}`; // 49 bytes
const keyDir = mkdtempSync(join(tmpdir(), 'parley-rest-key-'));
const keyFile = join(keyDir, 'jwt.key');
writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });

const UNKNOWN_ID = '987654321987654321'; // 18 digits, well-formed, names nothing
const BAD_IDS = ['abc', '-1', '01', '1234567890123456789', '1.5', '%20'];
const tag = () => randomBytes(3).toString('hex');

let S; // the main server
let anon; // client without token

before(async () => {
  S = await startServer({ args: ['--jwt-secret-file', keyFile] });
  anon = client(S.url);
});
after(async () => {
  await S?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

// Registers a user with a chosen name.
async function register(username, password = 'password123') {
  return anon.post('/api/auth/register', { username, password });
}
async function createGroup(owner, name, members = []) {
  const r = await owner.api.post('/api/chatrooms', { name, member_ids: members.map((m) => m.user.id) });
  assertStatus(r, 201, `create room ${name}`);
  return r.body;
}
const send = sendOk;
async function unread(who) {
  const r = await who.api.get('/api/messages/unread-counts');
  assertStatus(r, 200, 'unread-counts');
  return r.body;
}
const ids = (arr) => arr.map((x) => x.id);
const seqs = (msgs) => msgs.map((m) => m.seq);
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

// ---------------------------------------------------------------------------------------------
describe('service endpoints', () => {
  test('GET /healthz → 200 {"status":"ok"}', async () => {
    const r = await anon.get('/healthz');
    assertStatus(r, 200);
    assertLike(r.body, { status: 'ok' });
  });

  test('GET /readyz → 200 {"status":…}', async () => {
    const r = await anon.get('/readyz');
    assertStatus(r, 200);
    assert.equal(typeof r.body.status, 'string');
    assert.ok(r.body.status.length > 0);
  });

  test('GET /metrics → Prometheus text with request counters that count', async () => {
    const sumRequests = (text) => {
      const counters = new Set([...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]));
      let sum = 0;
      let names = 0;
      for (const line of text.split('\n')) {
        const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)/);
        if (!m) continue;
        const base = m[1].replace(/_total$/, '');
        if (!/request/i.test(m[1]) || /duration|bucket|_sum$|_count$|bytes|in_flight|inflight/i.test(m[1])) continue;
        if (!counters.has(m[1]) && !counters.has(base)) continue;
        names++;
        sum += Number(m[3]);
      }
      return { sum, names };
    };
    const r1 = await raw(S.url, 'GET', '/metrics');
    assertStatus(r1, 200);
    assert.match(r1.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(r1.text, /^# (HELP|TYPE) /m);
    const a = sumRequests(r1.text);
    assert.ok(a.names > 0, `no request counter in /metrics:\n${r1.text.slice(0, 2000)}`);
    const u = await newUser(S, 'met');
    for (let i = 0; i < 5; i++) assertStatus(await u.api.get('/api/me'), 200);
    const b = sumRequests((await raw(S.url, 'GET', '/metrics')).text);
    assert.ok(b.sum >= a.sum + 6, `request counters went from ${a.sum} to ${b.sum} after 6+ requests`);
  });

  test('unknown route → 404 not_found; known path with another method → 405 method_not_allowed', async () => {
    const u = await newUser(S, 'rt');
    assertError(await u.api.get('/api/nope'), 404, 'not_found', 'GET /api/nope');
    assertError(await u.api.get('/api/chatrooms/1/nope'), 404, 'not_found', 'GET /api/chatrooms/1/nope');
    assertError(await anon.get('/nope'), 404, 'not_found', 'GET /nope');
    assertError(await u.api.del('/api/me'), 405, 'method_not_allowed', 'DELETE /api/me');
    assertError(await u.api.put('/api/chatrooms', {}), 405, 'method_not_allowed', 'PUT /api/chatrooms');
    assertError(await u.api.get('/api/auth/register'), 405, 'method_not_allowed', 'GET /api/auth/register');
    assertError(await u.api.get('/api/auth/login'), 405, 'method_not_allowed', 'GET /api/auth/login');
    assertError(await u.api.post('/healthz', {}), 405, 'method_not_allowed', 'POST /healthz');
  });
});

// ---------------------------------------------------------------------------------------------
describe('auth', () => {
  test('register → 201 {user, token}; user is {id,username,created_at} with a string id', async () => {
    const name = `reg_${tag()}`;
    const t0 = Date.now();
    const r = await register(name);
    const t1 = Date.now();
    assertStatus(r, 201, 'register');
    assertUser(r.body.user, { username: name });
    const created = Date.parse(r.body.user.created_at);
    assert.ok(created >= t0 - 2 && created <= t1 + 2, 'created_at is now');
    assert.equal(typeof r.body.token, 'string');
    assert.equal(r.body.token.split('.').length, 3);
    const me = await client(S.url, r.body.token).get('/api/me');
    assertStatus(me, 200, '/api/me');
    assertLike(me.body, r.body.user);
  });

  test('usernames are stored lower case: "MixedCase…" → "mixedcase…", and the lower-case form is then taken', async () => {
    const t = tag();
    const r = await register(`MixedCase_${t}`);
    assertStatus(r, 201);
    assert.equal(r.body.user.username, `mixedcase_${t}`);
    assertError(await register(`mixedcase_${t}`), 409, 'username_taken', 'lower-case twin');
    assertError(await register(`MIXEDCASE_${t}`), 409, 'username_taken', 'upper-case twin');
  });

  test('username taken → 409 username_taken', async () => {
    const name = `dup_${tag()}`;
    assertStatus(await register(name), 201);
    assertError(await register(name, 'otherpassword'), 409, 'username_taken');
  });

  test('username rules: 3–32 of [a-z0-9_.-]', async () => {
    const t = tag(); // 6 chars
    for (const ok of [`a${t.slice(0, 2)}`, `${t}_${'x'.repeat(25)}`, `${t}.-_9`]) {
      assert.ok(ok.length >= 3 && ok.length <= 32);
      const r = await register(ok);
      assertStatus(r, 201, `register ${ok}`);
      assert.equal(r.body.user.username, ok);
    }
    for (const bad of ['ab', `${t}_${'x'.repeat(26)}`, `${t} x`, `${t}!`, `${t}ü`, `${t}/a`, `${t}@a`, '', `   `]) {
      assertError(await register(bad), 400, 'invalid_request', `username ${JSON.stringify(bad)}`);
    }
  });

  test('password rules: 8–128 bytes (bytes, not characters)', async () => {
    const t = tag();
    assertError(await register(`pw1_${t}`, '1234567'), 400, 'invalid_request', '7 bytes');
    assertStatus(await register(`pw2_${t}`, '12345678'), 201, '8 bytes');
    assertStatus(await register(`pw3_${t}`, 'p'.repeat(128)), 201, '128 bytes');
    assertError(await register(`pw4_${t}`, 'p'.repeat(129)), 400, 'invalid_request', '129 bytes');
    assertStatus(await register(`pw5_${t}`, 'ééé' + 'ab'), 201, '5 chars, 8 bytes');
    assertError(await register(`pw6_${t}`, 'é'.repeat(65)), 400, 'invalid_request', '65 chars, 130 bytes');
    // The rejected names were not created.
    assertStatus(await register(`pw1_${t}`), 201, 'pw1 free after a rejected register');
  });

  test('register/login: wrong types, missing fields, malformed JSON → 400', async () => {
    for (const path of ['/api/auth/register', '/api/auth/login']) {
      assertError(await anon.post(path, { username: 123, password: 'password123' }), 400, 'invalid_request', `${path} numeric username`);
      assertError(await anon.post(path, { username: 'someone', password: 12345678 }), 400, 'invalid_request', `${path} numeric password`);
      assertError(await anon.post(path, { username: 'someone' }), 400, 'invalid_request', `${path} no password`);
      assertError(await anon.post(path, { password: 'password123' }), 400, 'invalid_request', `${path} no username`);
      assertError(await anon.post(path, '{"username":"x",'), 400, 'invalid_json', `${path} truncated JSON`);
      assertError(await anon.post(path, '[]'), 400, 'invalid_json', `${path} array body`);
      assertError(await anon.post(path, 'null'), 400, 'invalid_json', `${path} null body`);
      assertError(await anon.post(path, ''), 400, 'invalid_json', `${path} empty body`);
    }
  });

  test('login → 200 {user, token}; wrong password and unknown user → 401 with the same message', async () => {
    const name = `login_${tag()}`;
    const reg = await register(name, 'correct horse');
    assertStatus(reg, 201);
    const r = await anon.post('/api/auth/login', { username: name, password: 'correct horse' });
    assertStatus(r, 200, 'login');
    assertLike(r.body.user, reg.body.user);
    assert.equal(typeof r.body.token, 'string');
    const me = await client(S.url, r.body.token).get('/api/me');
    assertStatus(me, 200);
    assert.equal(me.body.id, reg.body.user.id);

    const wrongPw = await anon.post('/api/auth/login', { username: name, password: 'wrong horse' });
    assertError(wrongPw, 401, 'invalid_credentials', 'wrong password');
    const unknown = await anon.post('/api/auth/login', { username: `nobody_${tag()}`, password: 'correct horse' });
    assertError(unknown, 401, 'invalid_credentials', 'unknown user');
    assert.equal(wrongPw.body.error.message, unknown.body.error.message, 'same message for both');
  });

  test('GET /api/me → 200 user', async () => {
    const u = await newUser(S, 'me');
    const r = await u.api.get('/api/me');
    assertStatus(r, 200);
    assertLike(r.body, u.user);
    assertUser(r.body);
  });

  test('GET /api/users?query=PREFIX: prefix match, case-insensitive, ascending, limit 1–50', async () => {
    const p = `srch${tag()}`;
    const made = {};
    for (const s of ['b', 'a', 'c']) {
      const r = await register(`${p}_${s}`);
      assertStatus(r, 201);
      made[s] = r.body.user;
    }
    const u = await newUser(S, 'q');
    let r = await u.api.get(`/api/users?query=${p}`);
    assertStatus(r, 200);
    assertLike(r.body.users, [made.a, made.b, made.c]);
    r.body.users.forEach((x) => assertUser(x));
    r = await u.api.get(`/api/users?query=${p.toUpperCase()}_`);
    assertStatus(r, 200);
    assertLike(r.body.users.map((x) => x.username), [`${p}_a`, `${p}_b`, `${p}_c`], 'case-insensitive');
    r = await u.api.get(`/api/users?query=${p}&limit=2`);
    assertStatus(r, 200);
    assertLike(r.body.users.map((x) => x.username), [`${p}_a`, `${p}_b`]);
    r = await u.api.get(`/api/users?query=${p}_b`);
    assertLike(r.body.users.map((x) => x.username), [`${p}_b`]);
    r = await u.api.get(`/api/users?query=${p}_z`);
    assertStatus(r, 200);
    assertLike(r.body, { users: [] });
    // Absent query lists from the start in ascending order.
    r = await u.api.get('/api/users?limit=50');
    assertStatus(r, 200);
    const names = r.body.users.map((x) => x.username);
    assert.ok(names.length > 3 && names.length <= 50);
    assertLike(names, [...names].sort(), 'ascending by username');
    const n = r.body.users.length;
    r = await u.api.get('/api/users');
    assert.equal(r.body.users.length, Math.min(n, 20), 'default limit 20');
    assertError(await u.api.get(`/api/users?query=${'a'.repeat(33)}`), 400, 'invalid_request', '33-byte query');
    assertStatus(await u.api.get(`/api/users?query=${'a'.repeat(32)}`), 200, '32-byte query');
    assertError(await u.api.get(`/api/users?query=${p}&limit=0`), 400, 'invalid_request', 'limit 0');
    assertError(await u.api.get(`/api/users?query=${p}&limit=51`), 400, 'invalid_request', 'limit 51');
    assertError(await u.api.get(`/api/users?query=${p}&limit=abc`), 400, 'invalid_request', 'limit abc');
  });
});

// ---------------------------------------------------------------------------------------------
describe('tokens (401)', () => {
  let u;
  let claims;
  let header;
  before(async () => { u = await newUser(S, 'jwt'); });

  test('the server issues HS256 tokens signed with the --jwt-secret-file key (sub, iat, exp = iat + 24 h, iss = parley, db, ver)', () => {
    const [h, p] = u.token.split('.');
    header = decodePart(h);
    claims = decodePart(p);
    assert.equal(header.alg, 'HS256');
    assert.equal(String(claims.sub), u.user.id);
    assert.equal(claims.iss, 'parley');
    assert.equal(claims.exp - claims.iat, 86400);
    assert.match(claims.db, /^[0-9a-f]{32}$/, 'the database id');
    assert.equal(claims.ver, 0, 'a new user\'s token version');
    assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60);
    assert.ok(hmacOk(u.token, KEY), 'signature verifies with the file bytes minus the trailing newline');
  });

  const forged = (over = {}, hdr = { alg: 'HS256', typ: 'JWT' }, key = KEY, hmac = 'sha256') => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { sub: claims.sub, iat: now, exp: now + 600, iss: 'parley', db: claims.db, ver: claims.ver, ...over };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    return signJwt(hdr, payload, key, hmac);
  };

  test('a self-signed HS256 token with the right key IS accepted', async () => {
    const r = await client(S.url, forged()).get('/api/me');
    assertStatus(r, 200, 'forged valid token');
    assertLike(r.body, u.user);
  });

  test('missing, garbage, alg:none, HS512, bad signature and expired tokens → 401 unauthorized', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = forged();
    const [gh, gp, gs] = good.split('.');
    const flipped = gs[0] === 'A' ? `B${gs.slice(1)}` : `A${gs.slice(1)}`;
    const cases = {
      missing: undefined,
      garbage: 'garbage',
      'three garbage parts': 'abc.def.ghi',
      'alg none': signJwt({ alg: 'none', typ: 'JWT' }, { sub: claims.sub, iat: now, exp: now + 600, iss: 'parley' }, null, null),
      'alg none with the HS256 signature': `${b64urlJson({ alg: 'none', typ: 'JWT' })}.${gp}.${gs}`,
      HS512: forged({}, { alg: 'HS512', typ: 'JWT' }, KEY, 'sha512'),
      'HS512 header, HS256 signature': forged({}, { alg: 'HS512', typ: 'JWT' }, KEY, 'sha256'),
      'bad signature (other key)': forged({}, undefined, `${KEY}x`),
      'bad signature (flipped)': `${gh}.${gp}.${flipped}`,
      'payload changed': `${gh}.${b64urlJson({ ...decodePart(gp), sub: '1' === String(claims.sub) ? '2' : '1' })}.${gs}`,
      expired: forged({ iat: now - 7200, exp: now - 3600 }),
      'no signature': `${gh}.${gp}.`,
      'key with the newline': forged({}, undefined, `${KEY}\n`),
      'without db': forged({ db: undefined }),
      'another database\'s db': forged({ db: '0'.repeat(32) }),
      'without ver': forged({ ver: undefined }),
      'ver as a string': forged({ ver: String(claims.ver) }),
      'ver of no revocation': forged({ ver: claims.ver + 1 }),
    };
    for (const [what, tok] of Object.entries(cases)) {
      const r = await raw(S.url, 'GET', '/api/me', { token: tok });
      assertError(r, 401, 'unauthorized', what);
    }
    for (const hdr of ['Token abc', `Basic ${b64url('a:b')}`, `Bearer`, `Bearer  `, good]) {
      const r = await raw(S.url, 'GET', '/api/me', { headers: { authorization: hdr } });
      assertError(r, 401, 'unauthorized', `Authorization: ${hdr.slice(0, 12)}`);
    }
    // RFC 7235: the scheme is case-insensitive; spaces may separate it from the token.
    for (const hdr of [`bearer ${good}`, `BEARER ${good}`, `Bearer   ${good}`]) {
      const r = await raw(S.url, 'GET', '/api/me', { headers: { authorization: hdr } });
      assertStatus(r, 200, `Authorization: ${hdr.slice(0, 12)}`);
    }
  });

  test('every /api route other than register/login needs a token', async () => {
    const routes = [
      ['GET', '/api/me'], ['GET', '/api/users?query=a'],
      ['POST', '/api/auth/logout'], ['POST', '/api/auth/password', { old_password: 'x', new_password: 'y' }],
      ['POST', '/api/chatrooms', { name: 'x' }], ['GET', '/api/chatrooms'], ['GET', '/api/chatrooms/1'],
      ['POST', '/api/chatrooms/1/members', { user_id: '1' }], ['DELETE', '/api/chatrooms/1/members/1'],
      ['POST', '/api/chatrooms/1/messages', { content: 'x' }], ['GET', '/api/chatrooms/1/messages'],
      ['GET', '/api/messages/1'], ['POST', '/api/messages/1/read'], ['POST', '/api/messages/read', { message_ids: ['1'] }],
      ['POST', '/api/chatrooms/1/mark-all-read'], ['GET', '/api/messages/unread-counts'], ['GET', '/api/messages/latest'],
      ['GET', '/api/chatrooms/1/first-unread'], ['GET', '/api/messages/1/read-by-who'],
    ];
    const expired = forged({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 });
    for (const [m, p, b] of routes) {
      const body = b === undefined ? undefined : JSON.stringify(b);
      assertError(await raw(S.url, m, p, { body }), 401, 'unauthorized', `${m} ${p} without token`);
      assertError(await raw(S.url, m, p, { body, token: expired }), 401, 'unauthorized', `${m} ${p} expired token`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('chatrooms', () => {
  let alice; let bob; let carol; let eve;
  before(async () => {
    [alice, bob, carol, eve] = await Promise.all(['ra', 'rb', 'rc', 're'].map((p) => newUser(S, p)));
  });

  test('create group → 201 room; caller always a member; duplicates and the caller folded', async () => {
    const t0 = Date.now();
    const r = await alice.api.post('/api/chatrooms', {
      name: 'Team ☕', member_ids: [bob.user.id, bob.user.id, alice.user.id, carol.user.id],
    });
    assertStatus(r, 201);
    assertRoom(r.body, {
      name: 'Team ☕', type: 'group', created_by: alice.user.id, last_seq: 0, unread_count: 0, last_message: null,
    });
    assertLike(memberIds(r.body), [alice.user.id, bob.user.id, carol.user.id].sort());
    assert.ok(Date.parse(r.body.created_at) >= t0 - 2);
    const alone = await alice.api.post('/api/chatrooms', { name: 'solo' });
    assertStatus(alone, 201, 'member_ids optional');
    assertLike(memberIds(alone.body), [alice.user.id]);
    const g = await bob.api.get(`/api/chatrooms/${r.body.id}`);
    assertStatus(g, 200);
    assert.equal(g.body.id, r.body.id);
    assert.equal(g.body.name, 'Team ☕');
  });

  test('create group: bad input → 400, unknown member → 404 and no room created', async () => {
    const before = (await eve.api.get('/api/chatrooms')).body.chatrooms.length;
    const bad = [
      [{}, 'no name'], [{ name: '' }, 'empty name'], [{ name: ' \t ' }, 'whitespace name'],
      [{ name: 'x'.repeat(101) }, '101-byte name'], [{ name: 'é'.repeat(51) }, '102-byte name'],
      [{ name: 5 }, 'numeric name'], [{ name: 'x', member_ids: 'abc' }, 'member_ids not an array'],
      [{ name: 'x', member_ids: [Number(bob.user.id)] }, 'numeric id'], [{ name: 'x', member_ids: ['abc'] }, 'id abc'],
      [{ name: 'x', member_ids: ['-1'] }, 'id -1'], [{ name: 'x', member_ids: ['01'] }, 'id 01'],
      [{ name: 'x', type: 'nonsense' }, 'unknown type'],
      [{ name: 'x', member_ids: Array(1001).fill(bob.user.id) }, '1,001 member_ids'],
    ];
    for (const [body, what] of bad) assertError(await eve.api.post('/api/chatrooms', body), 400, 'invalid_request', what);
    assertError(await eve.api.post('/api/chatrooms', '{"name":"x"'), 400, 'invalid_json', 'truncated');
    assertError(await eve.api.post('/api/chatrooms', '"name"'), 400, 'invalid_json', 'string body');
    assertError(await eve.api.post('/api/chatrooms', { name: 'x', member_ids: [bob.user.id, UNKNOWN_ID] }), 404, 'not_found', 'unknown member');
    const after = (await eve.api.get('/api/chatrooms')).body.chatrooms.length;
    assert.equal(after, before, 'no room was created by the failed requests');
    const r = await eve.api.post('/api/chatrooms', { name: 'x'.repeat(100) });
    assertStatus(r, 201, '100-byte name');
    assert.equal(r.body.name, 'x'.repeat(100));
  });

  test('direct room: create, then create-or-return-existing from either side; name null', async () => {
    const d1 = await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [eve.user.id] });
    assertStatus(d1, 201, 'first direct');
    assertRoom(d1.body, { type: 'direct', name: null, last_seq: 0, unread_count: 0, last_message: null, created_by: carol.user.id });
    assertLike(memberIds(d1.body), [carol.user.id, eve.user.id].sort());
    const d2 = await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [eve.user.id] });
    assert.ok(d2.status === 200 || d2.status === 201, `repeat → ${d2.status}`);
    assert.equal(d2.body.id, d1.body.id, 'same room returned');
    const d3 = await eve.api.post('/api/chatrooms', { type: 'direct', member_ids: [carol.user.id] });
    assert.ok(d3.status === 200 || d3.status === 201, `other side → ${d3.status}`);
    assert.equal(d3.body.id, d1.body.id, 'same room from the other side');
    const directs = (await carol.api.get('/api/chatrooms')).body.chatrooms.filter((r) => r.type === 'direct' && r.id === d1.body.id);
    assert.equal(directs.length, 1);
  });

  test('direct room: self, zero or two members → 400; unknown user → 404', async () => {
    assertError(await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [carol.user.id] }), 400, 'invalid_request', 'self');
    assertError(await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [] }), 400, 'invalid_request', 'zero');
    assertError(await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [alice.user.id, bob.user.id] }), 400, 'invalid_request', 'two');
    assertError(await carol.api.post('/api/chatrooms', { type: 'direct', member_ids: [UNKNOWN_ID] }), 404, 'not_found', 'unknown');
  });

  test('list: newest activity first, with last_seq, unread_count and last_message per room', async () => {
    const [x, y] = await Promise.all([newUser(S, 'lx'), newUser(S, 'ly')]);
    const r1 = await createGroup(x, 'r1', [y]); await sleep(15);
    const r2 = await createGroup(x, 'r2', [y]); await sleep(15);
    const r3 = await createGroup(x, 'r3', [y]); await sleep(15);
    let l = await x.api.get('/api/chatrooms');
    assertStatus(l, 200);
    assertLike(ids(l.body.chatrooms), [r3.id, r2.id, r1.id], 'by creation, newest first');
    l.body.chatrooms.forEach((r) => assertRoom(r, { last_seq: 0, unread_count: 0, last_message: null }));
    const m1 = await send(y, r1.id, 'one'); await sleep(15);
    const m2 = await send(y, r1.id, 'two'); await sleep(15);
    l = await x.api.get('/api/chatrooms');
    assertLike(ids(l.body.chatrooms), [r1.id, r3.id, r2.id], 'room with the newest message first');
    assertRoom(l.body.chatrooms[0], { last_seq: 2, unread_count: 2, last_message: m2 });
    const m3 = await send(x, r2.id, 'three');
    l = await x.api.get('/api/chatrooms');
    assertLike(ids(l.body.chatrooms), [r2.id, r1.id, r3.id]);
    assertRoom(l.body.chatrooms[0], { last_seq: 1, unread_count: 0, last_message: m3 });
    const ly = await y.api.get('/api/chatrooms');
    assertLike(ids(ly.body.chatrooms), [r2.id, r1.id, r3.id], 'same order for the other member');
    assertLike(ly.body.chatrooms.map((r) => [r.last_seq, r.unread_count]), [[1, 1], [2, 0], [0, 0]]);
    assert.equal(m1.seq, 1);
    // Only the caller's rooms.
    const z = await newUser(S, 'lz');
    const lz = await z.api.get('/api/chatrooms');
    assertStatus(lz, 200);
    assertLike(lz.body, { chatrooms: [] });
  });

  test('GET /api/chatrooms/:id → room; 400 bad id, 404 unknown, 403 non-member', async () => {
    const r = await createGroup(alice, 'get-me', [bob]);
    const g = await bob.api.get(`/api/chatrooms/${r.id}`);
    assertStatus(g, 200);
    assertRoom(g.body, { id: r.id, name: 'get-me', created_by: alice.user.id, last_seq: 0 });
    for (const bad of BAD_IDS) assertError(await bob.api.get(`/api/chatrooms/${bad}`), 400, 'invalid_request', `id ${bad}`);
    assertError(await bob.api.get(`/api/chatrooms/${UNKNOWN_ID}`), 404, 'not_found');
    assertError(await eve.api.get(`/api/chatrooms/${r.id}`), 403, 'forbidden');
  });

  test('add member: any member may add; re-adding changes nothing; 400/403/404', async () => {
    const r = await createGroup(alice, 'adds', [bob]);
    const a = await bob.api.post(`/api/chatrooms/${r.id}/members`, { user_id: carol.user.id });
    assertStatus(a, 200, 'non-creator member adds');
    assertRoom(a.body, { id: r.id, created_by: alice.user.id });
    assertLike(memberIds(a.body), [alice.user.id, bob.user.id, carol.user.id].sort());
    const again = await alice.api.post(`/api/chatrooms/${r.id}/members`, { user_id: carol.user.id });
    assertStatus(again, 200, 're-add');
    assertLike(memberIds(again.body), memberIds(a.body));
    assertError(await eve.api.post(`/api/chatrooms/${r.id}/members`, { user_id: eve.user.id }), 403, 'forbidden', 'non-member adds self');
    assertError(await alice.api.post(`/api/chatrooms/${r.id}/members`, { user_id: UNKNOWN_ID }), 404, 'not_found', 'unknown user');
    assertError(await alice.api.post(`/api/chatrooms/${r.id}/members`, { user_id: 'abc' }), 400, 'invalid_request', 'bad user id');
    assertError(await alice.api.post(`/api/chatrooms/${r.id}/members`, { user_id: Number(eve.user.id) }), 400, 'invalid_request', 'numeric user id');
    assertError(await alice.api.post(`/api/chatrooms/${r.id}/members`, {}), 400, 'invalid_request', 'no user id');
    assertError(await alice.api.post(`/api/chatrooms/${r.id}/members`, '{'), 400, 'invalid_json', 'malformed');
    assertError(await alice.api.post(`/api/chatrooms/${UNKNOWN_ID}/members`, { user_id: eve.user.id }), 404, 'not_found', 'unknown room');
    const g = await alice.api.get(`/api/chatrooms/${r.id}`);
    assertLike(memberIds(g.body), [alice.user.id, bob.user.id, carol.user.id].sort(), 'eve was never added');
  });

  test('remove member: self → 204, creator removes other → 204, non-creator removing other → 403, non-member → 404', async () => {
    const r = await createGroup(alice, 'removes', [bob, carol]);
    assertError(await bob.api.del(`/api/chatrooms/${r.id}/members/${carol.user.id}`), 403, 'forbidden', 'bob removes carol');
    const c = await alice.api.del(`/api/chatrooms/${r.id}/members/${carol.user.id}`);
    assert.equal(c.status, 204, 'creator removes carol');
    assert.equal(c.body, null, '204 has no body');
    assertError(await carol.api.get(`/api/chatrooms/${r.id}`), 403, 'forbidden', 'carol is out');
    assert.ok(!ids((await carol.api.get('/api/chatrooms')).body.chatrooms).includes(r.id), 'not in carol list');
    assert.ok(!(r.id in (await unread(carol)).unread_counts), 'not in carol unread-counts');
    const b = await bob.api.del(`/api/chatrooms/${r.id}/members/${bob.user.id}`);
    assert.equal(b.status, 204, 'bob leaves');
    assertError(await bob.api.get(`/api/chatrooms/${r.id}/messages`), 403, 'forbidden', 'bob is out');
    assertError(await alice.api.del(`/api/chatrooms/${r.id}/members/${bob.user.id}`), 404, 'not_found', 'bob no longer a member');
    assertError(await alice.api.del(`/api/chatrooms/${r.id}/members/${UNKNOWN_ID}`), 404, 'not_found', 'unknown user');
    for (const bad of ['abc', '-1', '01']) {
      assertError(await alice.api.del(`/api/chatrooms/${r.id}/members/${bad}`), 400, 'invalid_request', `user id ${bad}`);
    }
    assertError(await eve.api.del(`/api/chatrooms/${r.id}/members/${eve.user.id}`), 403, 'forbidden', 'non-member');
    const g = await alice.api.get(`/api/chatrooms/${r.id}`);
    assertLike(memberIds(g.body), [alice.user.id]);
    // Re-adding a removed member works (any member may add).
    assertStatus(await alice.api.post(`/api/chatrooms/${r.id}/members`, { user_id: bob.user.id }), 200);
    assertStatus(await bob.api.get(`/api/chatrooms/${r.id}`), 200, 'bob is back');
  });

  test('direct room: every add or remove → 400 (members never change)', async () => {
    const d = await alice.api.post('/api/chatrooms', { type: 'direct', member_ids: [bob.user.id] });
    assert.ok(d.status === 201 || d.status === 200);
    assertError(await alice.api.post(`/api/chatrooms/${d.body.id}/members`, { user_id: carol.user.id }), 400, 'invalid_request', 'add other');
    assertError(await alice.api.post(`/api/chatrooms/${d.body.id}/members`, { user_id: bob.user.id }), 400, 'invalid_request', 'add present');
    assertError(await alice.api.del(`/api/chatrooms/${d.body.id}/members/${bob.user.id}`), 400, 'invalid_request', 'remove other');
    assertError(await bob.api.del(`/api/chatrooms/${d.body.id}/members/${bob.user.id}`), 400, 'invalid_request', 'remove self');
    assertError(await eve.api.post(`/api/chatrooms/${d.body.id}/members`, { user_id: eve.user.id }), 403, 'forbidden', 'non-member (403 before 400)');
    const g = await alice.api.get(`/api/chatrooms/${d.body.id}`);
    assertLike(memberIds(g.body), [alice.user.id, bob.user.id].sort());
  });
});

// ---------------------------------------------------------------------------------------------
describe('every room and message route: 400 bad id, 404 unknown, 403 non-member', () => {
  test('all routes', async () => {
    const [m, x] = await Promise.all([newUser(S, 'am'), newUser(S, 'ax')]);
    const room = await createGroup(m, 'guarded');
    const msg = await send(m, room.id, 'secret');
    const roomRoutes = [
      ['GET', (id) => `/api/chatrooms/${id}`],
      ['POST', (id) => `/api/chatrooms/${id}/members`, { user_id: x.user.id }],
      ['DELETE', (id) => `/api/chatrooms/${id}/members/${x.user.id}`],
      ['DELETE', (id) => `/api/chatrooms/${id}/members/${m.user.id}`],
      ['POST', (id) => `/api/chatrooms/${id}/messages`, { content: 'hi' }],
      ['GET', (id) => `/api/chatrooms/${id}/messages`],
      ['POST', (id) => `/api/chatrooms/${id}/mark-all-read`],
      ['GET', (id) => `/api/chatrooms/${id}/first-unread`],
    ];
    const msgRoutes = [
      ['GET', (id) => `/api/messages/${id}`],
      ['POST', (id) => `/api/messages/${id}/read`],
      ['GET', (id) => `/api/messages/${id}/read-by-who`],
      ['POST', () => '/api/messages/read', (id) => ({ message_ids: [id] })],
    ];
    const call = (who, method, path, body) => raw(S.url, method, path, { token: who.token, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const [method, p, b] of roomRoutes) {
      for (const bad of ['abc', '-1', '01']) assertError(await call(x, method, p(bad), b), 400, 'invalid_request', `${method} ${p(bad)}`);
      assertError(await call(x, method, p(UNKNOWN_ID), b), 404, 'not_found', `${method} ${p(UNKNOWN_ID)}`);
      assertError(await call(x, method, p(room.id), b), 403, 'forbidden', `${method} ${p(room.id)} as non-member`);
    }
    for (const [method, p, b] of msgRoutes) {
      const body = (id) => (typeof b === 'function' ? b(id) : b);
      for (const bad of ['abc', '-1', '01']) assertError(await call(x, method, p(bad), body(bad)), 400, 'invalid_request', `${method} ${p(bad)} ${bad}`);
      assertError(await call(x, method, p(UNKNOWN_ID), body(UNKNOWN_ID)), 404, 'not_found', `${method} ${p(UNKNOWN_ID)} unknown`);
      assertError(await call(x, method, p(msg.id), body(msg.id)), 403, 'forbidden', `${method} ${p(msg.id)} as non-member`);
    }
    // Nothing changed through the refused calls.
    const g = await m.api.get(`/api/chatrooms/${room.id}`);
    assertLike(memberIds(g.body), [m.user.id]);
    assert.equal(g.body.last_seq, 1);
  });

  test('404 and 403 come before any complaint about the body or the query', async () => {
    const [m, x] = await Promise.all([newUser(S, 'pm'), newUser(S, 'px')]);
    const room = await createGroup(m, 'precedence');
    const bad = [
      ['POST', (id) => `/api/chatrooms/${id}/messages`, '{"content":"   "}'],
      ['POST', (id) => `/api/chatrooms/${id}/messages`, '{not json'],
      ['POST', (id) => `/api/chatrooms/${id}/members`, '{"user_id":"abc"}'],
      ['DELETE', (id) => `/api/chatrooms/${id}/members/abc`, undefined],
      ['GET', (id) => `/api/chatrooms/${id}/messages?limit=999`, undefined],
    ];
    for (const [method, p, body] of bad) {
      assertError(await raw(S.url, method, p(UNKNOWN_ID), { token: x.token, body }), 404, 'not_found', `${method} ${p(UNKNOWN_ID)}`);
      assertError(await raw(S.url, method, p(room.id), { token: x.token, body }), 403, 'forbidden', `${method} ${p(room.id)} non-member`);
      assertStatus(await raw(S.url, method, p(room.id), { token: m.token, body }), 400, `${method} ${p(room.id)} member`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('messages', () => {
  let a; let b; let room;
  before(async () => {
    [a, b] = await Promise.all([newUser(S, 'ma'), newUser(S, 'mb')]);
    room = await createGroup(a, 'msgs', [b]);
  });

  test('send → 201 message; seq 1, 2, 3 gap-free; GET /api/messages/:id returns it', async () => {
    const t0 = Date.now();
    const m1 = await send(a, room.id, 'hello');
    const m2 = await send(b, room.id, 'héllo wörld 🎉');
    const m3 = await send(a, room.id, '  padded  ', { client_msg_id: 'c-1' });
    const t1 = Date.now();
    assertMessage(m1, { room_id: room.id, sender_id: a.user.id, content: 'hello', seq: 1 });
    assertMessage(m2, { room_id: room.id, sender_id: b.user.id, content: 'héllo wörld 🎉', seq: 2 });
    assertMessage(m3, { room_id: room.id, sender_id: a.user.id, content: '  padded  ', seq: 3, client_msg_id: 'c-1' });
    assert.ok(!('client_msg_id' in m1) || m1.client_msg_id === null, 'no client_msg_id when none was sent');
    for (const m of [m1, m2, m3]) {
      const c = Date.parse(m.created_at);
      assert.ok(c >= t0 - 2 && c <= t1 + 2, 'created_at is now');
    }
    assert.ok(new Set([m1.id, m2.id, m3.id]).size === 3);
    const g = await b.api.get(`/api/messages/${m3.id}`);
    assertStatus(g, 200);
    assertLike(g.body, m3);
    const r = await a.api.get(`/api/chatrooms/${room.id}`);
    assertRoom(r.body, { last_seq: 3, last_message: m3, unread_count: 0 });
  });

  test('client_msg_id repeat → 200 with the original message; nothing new stored; next seq follows', async () => {
    const first = await send(a, room.id, 'once', { client_msg_id: 'retry-1' });
    const unreadB = (await unread(b)).unread_counts[room.id];
    const again = await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'once', client_msg_id: 'retry-1' });
    assertStatus(again, 200, 'repeat');
    assertLike(again.body, first);
    const changed = await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'different', client_msg_id: 'retry-1' });
    assertStatus(changed, 200, 'repeat with other content');
    assertLike(changed.body, first, 'the original is returned');
    const r = await a.api.get(`/api/chatrooms/${room.id}`);
    assert.equal(r.body.last_seq, first.seq, 'no new seq');
    assert.equal((await unread(b)).unread_counts[room.id], unreadB, 'no new unread for b');
    const next = await send(a, room.id, 'next');
    assert.equal(next.seq, first.seq + 1, 'gap-free after a repeat');
    // Same client_msg_id from another sender, or in another room, is a new message.
    const fromB = await b.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'b once', client_msg_id: 'retry-1' });
    assertStatus(fromB, 201, 'other sender');
    assert.equal(fromB.body.seq, first.seq + 2);
    const other = await createGroup(a, 'msgs-2', [b]);
    const inOther = await a.api.post(`/api/chatrooms/${other.id}/messages`, { content: 'once', client_msg_id: 'retry-1' });
    assertStatus(inOther, 201, 'other room');
    assert.equal(inOther.body.seq, 1);
    const h = await a.api.get(`/api/chatrooms/${room.id}/messages?after_seq=${first.seq - 1}`);
    assertLike(seqs(h.body.messages), [first.seq, first.seq + 1, first.seq + 2]);
  });

  test('client_msg_id rules: 1–64 chars, a string', async () => {
    const ok = await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'x', client_msg_id: 'k'.repeat(64) });
    assertStatus(ok, 201, '64 chars');
    assert.equal(ok.body.client_msg_id, 'k'.repeat(64));
    for (const [cid, what] of [['k'.repeat(65), '65 chars'], ['', 'empty'], [42, 'number'], [['a'], 'array'],
      ['a\u0001b', 'control character'], ['tab\there', 'tab']]) {
      assertError(await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: 'x', client_msg_id: cid }), 400, 'invalid_request', what);
    }
  });

  test('content rules: empty, whitespace-only, > 16,384 bytes, invalid UTF-8, wrong type → 400', async () => {
    const before = (await a.api.get(`/api/chatrooms/${room.id}`)).body.last_seq;
    const path = `/api/chatrooms/${room.id}/messages`;
    const bad = [
      [{ content: '' }, 'empty'], [{ content: '   ' }, 'spaces'], [{ content: ' \t\r\n ' }, 'ASCII white space'],
      [{ content: '\u00a0\u3000\u2003\u200b\ufeff\u2028' }, 'Unicode white space'],
      [{ content: 'a'.repeat(16385) }, '16,385 bytes'], [{ content: 'é'.repeat(8192) + 'a' }, '8,193 chars = 16,385 bytes'],
      [{ content: 5 }, 'number'], [{ content: null }, 'null'], [{ content: ['x'] }, 'array'], [{}, 'missing'],
    ];
    for (const [body, what] of bad) assertError(await a.api.post(path, body), 400, 'invalid_request', what);
    assertError(await a.api.post(path, '{"content":"x"'), 400, 'invalid_json', 'truncated JSON');
    assertError(await a.api.post(path, '{"content":"x"} trailing'), 400, 'invalid_json', 'trailing garbage');
    assertError(await a.api.post(path, '["x"]'), 400, 'invalid_json', 'array body');
    assertError(await a.api.post(path, 'content=x'), 400, 'invalid_json', 'form body');
    for (const [bytes, what] of [
      [Buffer.from([0xff, 0xfe, 0x41]), 'bytes ff fe'], [Buffer.from([0xc3]), 'truncated sequence'],
      [Buffer.from([0xc0, 0xaf]), 'overlong'], [Buffer.from([0xed, 0xa0, 0x80]), 'UTF-8 surrogate'],
    ]) {
      const body = Buffer.concat([Buffer.from('{"content":"ok '), bytes, Buffer.from('"}')]);
      const r = await raw(S.url, 'POST', path, { token: a.token, body });
      assertError(r, 400, undefined, `invalid UTF-8: ${what}`);
      assert.ok(['invalid_json', 'invalid_request'].includes(r.body.error.code), `code for ${what}: ${r.body.error.code}`);
    }
    const lone = await a.api.post(path, '{"content":"ok \\ud800"}');
    assert.equal(lone.status, 400, `lone surrogate escape → ${lone.status}`);
    assert.equal((await a.api.get(`/api/chatrooms/${room.id}`)).body.last_seq, before, 'nothing stored');
    // The bounds themselves are fine.
    const max = await send(a, room.id, 'a'.repeat(16384));
    assert.equal(max.content.length, 16384);
    const maxMb = await send(a, room.id, 'é'.repeat(8192));
    assert.equal(maxMb.content, 'é'.repeat(8192));
    const one = await send(a, room.id, '.');
    assert.equal(one.content, '.');
    assert.equal(one.seq, before + 3);
  });

  test('request body > 1 MiB → 413 payload_too_large; exactly 1 MiB is not refused', async () => {
    const path = `/api/chatrooms/${room.id}/messages`;
    const prefix = '{"content":"fits"}';
    const exact = prefix + ' '.repeat(1024 * 1024 - prefix.length);
    assert.equal(Buffer.byteLength(exact), 1048576);
    const ok = await raw(S.url, 'POST', path, { token: a.token, body: exact });
    assertStatus(ok, 201, 'exactly 1 MiB');
    let big;
    try {
      big = await raw(S.url, 'POST', path, { token: a.token, body: `${exact} ` });
    } catch (e) {
      // The server may answer before reading the body and close; read the answer raw instead.
      big = null;
    }
    if (big) assertError(big, 413, 'payload_too_large', '1 MiB + 1 byte');
    // Declared length alone is enough to refuse.
    const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\nContent-Type: application/json\r\nContent-Length: ${5 * 1024 * 1024}\r\n\r\n{"content":"`;
    const r = await rawHttp(S.url, head, 5000);
    assert.equal(r.status, 413, `declared 5 MiB → ${r.text.slice(0, 200)}`);
    assert.match(r.text, /"payload_too_large"/);
    // A chunked body over 1 MiB too.
    const chunk = 'a'.repeat(64 * 1024);
    let chunked = `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    chunked += `c\r\n{"content":"\r\n`;
    for (let i = 0; i < 17; i++) chunked += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    chunked += `2\r\n"}\r\n0\r\n\r\n`;
    const rc = await rawHttp(S.url, chunked, 5000);
    assert.equal(rc.status, 413, `chunked 1.06 MiB → ${rc.text.slice(0, 200)}`);
    const last = (await a.api.get(`/api/chatrooms/${room.id}`)).body;
    assert.equal(last.last_message.content, 'fits', 'nothing stored from the refused bodies');
    // The refusals are counted in the request metrics too.
    const metrics = await (await fetch(`${S.url}/metrics`)).text();
    const m = metrics.match(/parley_http_requests_total\{route="unparsed",method="OTHER",status="413"\} (\d+)/);
    assert.ok(m && Number(m[1]) >= 2, `413s counted in /metrics: ${m?.[0]}`);
    // The server is fine afterwards.
    assertStatus(await a.api.get('/api/me'), 200);
  });

  test('concurrent sends get seq 1..N with no gap and no duplicate', async () => {
    const r = await createGroup(a, 'burst', [b]);
    const sends = [];
    // A send shed at the entrance (503 unavailable when the machine is loaded) stored nothing
    // and is retried, as a client does, with its client_msg_id.
    for (let i = 0; i < 40; i++) {
      sends.push(retryShed(() => (i % 2 ? a : b).api.post(`/api/chatrooms/${r.id}/messages`, { content: `m${i}`, client_msg_id: `burst-${i}` })));
    }
    const res = await Promise.all(sends);
    res.forEach((x) => assertStatus(x, 201));
    assertLike(res.map((x) => x.body.seq).sort((p, q) => p - q), range(1, 40));
    const h = await a.api.get(`/api/chatrooms/${r.id}/messages?limit=200`);
    assertLike(seqs(h.body.messages), range(1, 40));
    assert.equal(h.body.has_more, false);
  });
});

// ---------------------------------------------------------------------------------------------
describe('history paging', () => {
  let a; let b; let room; let all;
  before(async () => {
    [a, b] = await Promise.all([newUser(S, 'ha'), newUser(S, 'hb')]);
    room = await createGroup(a, 'history', [b]);
    all = [];
    for (let i = 1; i <= 52; i++) all.push(await send(i % 3 ? a : b, room.id, `msg ${i}`));
  });
  const page = async (q) => {
    const r = await b.api.get(`/api/chatrooms/${room.id}/messages${q}`);
    assertStatus(r, 200, q);
    assert.equal(typeof r.body.has_more, 'boolean');
    return r.body;
  };
  const cases = [
    ['', range(3, 52), true],
    ['?limit=200', range(1, 52), false],
    ['?limit=52', range(1, 52), false],
    ['?limit=51', range(2, 52), true],
    ['?limit=1', [52], true],
    ['?before_seq=5&limit=3', [2, 3, 4], true],
    ['?before_seq=4&limit=3', [1, 2, 3], false],
    ['?before_seq=4', [1, 2, 3], false],
    ['?before_seq=1', [], false],
    ['?before_seq=53', range(3, 52), true],
    ['?before_seq=1000&limit=200', range(1, 52), false],
    ['?after_seq=0&limit=2', [1, 2], true],
    ['?after_seq=2&limit=3', [3, 4, 5], true],
    ['?after_seq=48&limit=3', [49, 50, 51], true],
    ['?after_seq=49&limit=3', [50, 51, 52], false],
    ['?after_seq=49', [50, 51, 52], false],
    ['?after_seq=0', range(1, 50), true],
    ['?after_seq=2', range(3, 52), false],
    ['?after_seq=52', [], false],
    ['?after_seq=100', [], false],
    ['?after_seq=10&before_seq=20&limit=5', [11, 12, 13, 14, 15], true],
    ['?after_seq=10&before_seq=20&limit=9', range(11, 19), false],
    ['?before_seq=20&after_seq=10', range(11, 19), false],
    ['?after_seq=10&before_seq=11', [], false],
    ['?after_seq=0&before_seq=53&limit=200', range(1, 52), false],
    ['?after_seq=0&before_seq=53&limit=51', range(1, 51), true],
  ];
  for (const [q, want, more] of cases) {
    test(`GET messages${q || ' (no parameters)'} → seqs ${want.length > 4 ? `${want[0]}..${want.at(-1)}` : JSON.stringify(want)}, has_more ${more}`, async () => {
      const p = await page(q);
      assertLike(seqs(p.messages), want);
      assert.equal(p.has_more, more);
      for (const m of p.messages) assertLike(m, all[m.seq - 1]);
    });
  }
  test('bad paging parameters → 400 invalid_request', async () => {
    for (const q of ['limit=0', 'limit=201', 'limit=-1', 'limit=abc', 'limit=', 'limit=1.5', 'before_seq=abc', 'after_seq=-1', 'after_seq=x', 'before_seq=1e3']) {
      assertError(await b.api.get(`/api/chatrooms/${room.id}/messages?${q}`), 400, 'invalid_request', q);
    }
  });
  test('an empty room pages to {messages:[], has_more:false}', async () => {
    const e = await createGroup(a, 'empty');
    const r = await a.api.get(`/api/chatrooms/${e.id}/messages`);
    assertStatus(r, 200);
    assertLike(r.body, { messages: [], has_more: false });
  });
});

// ---------------------------------------------------------------------------------------------
describe('read status', () => {
  let a; let b; let c;
  before(async () => { [a, b, c] = await Promise.all([newUser(S, 'sa'), newUser(S, 'sb'), newUser(S, 'sc')]); });

  test('single read: watermark semantics, never backwards; own messages never unread', async () => {
    const r = await createGroup(a, 'single', [b]);
    const ms = [];
    for (let i = 1; i <= 5; i++) ms.push(await send(a, r.id, `s${i}`));
    let x = await b.api.post(`/api/messages/${ms[2].id}/read`);
    assertStatus(x, 200);
    assertLike(x.body, { room_id: r.id, up_to_seq: 3, unread_count: 2 });
    x = await b.api.post(`/api/messages/${ms[0].id}/read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 3, unread_count: 2 }, 'never backwards');
    x = await b.api.post(`/api/messages/${ms[4].id}/read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 5, unread_count: 0 });
    // The sender reading an older one of their own messages: watermark stays at their send.
    x = await a.api.post(`/api/messages/${ms[1].id}/read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 5, unread_count: 0 });
    // b sends, a has 1 unread; b's own message is not unread for b.
    const m6 = await send(b, r.id, 's6');
    assert.equal((await unread(a)).unread_counts[r.id], 1);
    assert.equal((await unread(b)).unread_counts[r.id], 0);
    x = await a.api.post(`/api/messages/${m6.id}/read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 6, unread_count: 0 });
  });

  test('bulk read: spans rooms, all or nothing (403 vs 404), 1–500 ids', async () => {
    const r1 = await createGroup(b, 'bulk1', [a]);
    const r2 = await createGroup(b, 'bulk2', [a]);
    const rx = await createGroup(b, 'bulkx', [c]);
    const m1 = [await send(b, r1.id, '1a'), await send(b, r1.id, '1b'), await send(b, r1.id, '1c')];
    const m2 = [await send(b, r2.id, '2a'), await send(b, r2.id, '2b')];
    const mx = await send(b, rx.id, 'xa');
    const counts = async () => { const u = (await unread(a)).unread_counts; return [u[r1.id], u[r2.id]]; };
    assertLike(await counts(), [3, 2]);

    // All or nothing.
    assertError(await a.api.post('/api/messages/read', { message_ids: [m1[2].id, mx.id] }), 403, 'forbidden', 'one id of a foreign room');
    assertError(await a.api.post('/api/messages/read', { message_ids: [m1[2].id, UNKNOWN_ID] }), 404, 'not_found', 'one unknown id');
    assertError(await a.api.post('/api/messages/read', { message_ids: [UNKNOWN_ID, m1[2].id, mx.id] }), 403, 'forbidden', 'unknown and foreign');
    assertLike(await counts(), [3, 2], 'nothing was marked');

    // Input rules.
    for (const [body, what] of [
      [{ message_ids: [] }, 'zero ids'], [{ message_ids: Array(501).fill(m1[0].id) }, '501 ids'],
      [{ message_ids: [m1[0].id, 'abc'] }, 'id abc'], [{ message_ids: [m1[0].id, '01'] }, 'id 01'],
      [{ message_ids: [Number(m1[0].id)] }, 'numeric id'], [{ message_ids: m1[0].id }, 'not an array'], [{}, 'missing'],
    ]) assertError(await a.api.post('/api/messages/read', body), 400, 'invalid_request', what);
    assertError(await a.api.post('/api/messages/read', '{"message_ids":['), 400, 'invalid_json');
    assertLike(await counts(), [3, 2], 'nothing was marked by bad input');

    // Success, rooms in order of first appearance, up_to_seq = highest id per room.
    let x = await a.api.post('/api/messages/read', { message_ids: [m2[0].id, m1[1].id, m2[0].id, m1[0].id] });
    assertStatus(x, 200);
    assertLike(x.body, { rooms: [
      { room_id: r2.id, up_to_seq: 1, unread_count: 1 },
      { room_id: r1.id, up_to_seq: 2, unread_count: 1 },
    ] });
    assertLike(await counts(), [1, 1]);
    // 500 ids (duplicates allowed), including one behind the watermark.
    x = await a.api.post('/api/messages/read', { message_ids: [...Array(499).fill(m1[2].id), m1[0].id] });
    assertStatus(x, 200, '500 ids');
    assertLike(x.body, { rooms: [{ room_id: r1.id, up_to_seq: 3, unread_count: 0 }] });
    assertLike(await counts(), [0, 1]);
  });

  test('mark-all-read → {room_id, up_to_seq, unread_count:0, marked}', async () => {
    const r = await createGroup(a, 'mar', [b]);
    let x = await b.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    assertStatus(x, 200, 'empty room');
    assertLike(x.body, { room_id: r.id, up_to_seq: 0, unread_count: 0, marked: 0 });
    for (let i = 0; i < 4; i++) await send(a, r.id, `m${i}`);
    await send(b, r.id, 'mine');
    assert.equal((await unread(b)).unread_counts[r.id], 0, 'b sent the newest one');
    for (let i = 0; i < 3; i++) await send(a, r.id, `n${i}`);
    x = await b.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 8, unread_count: 0, marked: 3 });
    x = await b.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 8, unread_count: 0, marked: 0 }, 'second call marks nothing');
    // a's own sends (6–8) already moved a past b's message 5: nothing to mark.
    x = await a.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 8, unread_count: 0, marked: 0 });
    await send(b, r.id, 'b again');
    await send(b, r.id, 'b again 2');
    x = await a.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    assertLike(x.body, { room_id: r.id, up_to_seq: 10, unread_count: 0, marked: 2 });
  });

  test('unread-counts: every room, zeros included, total; latest: every room, null when empty; first-unread', async () => {
    const [p, q] = await Promise.all([newUser(S, 'up'), newUser(S, 'uq')]);
    let u = await unread(p);
    assertLike(u, { unread_counts: {}, total: 0 }, 'no rooms');
    assertLike((await p.api.get('/api/messages/latest')).body, { latest: [] });
    const r1 = await createGroup(q, 'u1', [p]);
    const r2 = await createGroup(q, 'u2', [p]);
    const r3 = await createGroup(q, 'u3', [p]);
    await send(q, r1.id, 'a');
    const last1 = await send(q, r1.id, 'b');
    const last2 = await send(q, r2.id, 'c');
    u = await unread(p);
    assertLike(u, { unread_counts: { [r1.id]: 2, [r2.id]: 1, [r3.id]: 0 }, total: 3 });
    assertLike(await unread(q), { unread_counts: { [r1.id]: 0, [r2.id]: 0, [r3.id]: 0 }, total: 0 });
    const l = await p.api.get('/api/messages/latest');
    assertStatus(l, 200);
    const byRoom = Object.fromEntries(l.body.latest.map((e) => [e.room_id, e.message]));
    assert.equal(l.body.latest.length, 3);
    assertLike(byRoom, { [r1.id]: last1, [r2.id]: last2, [r3.id]: null });
    let f = await p.api.get(`/api/chatrooms/${r1.id}/first-unread`);
    assertStatus(f, 200);
    assert.equal(f.body.unread_count, 2);
    assertMessage(f.body.message, { seq: 1, content: 'a', room_id: r1.id });
    f = await p.api.get(`/api/chatrooms/${r3.id}/first-unread`);
    assertLike(f.body, { message: null, unread_count: 0 });
    await p.api.post(`/api/messages/${last1.id}/read`);
    f = await p.api.get(`/api/chatrooms/${r1.id}/first-unread`);
    assertLike(f.body, { message: null, unread_count: 0 });
    assertLike(await unread(p), { unread_counts: { [r1.id]: 0, [r2.id]: 1, [r3.id]: 0 }, total: 1 });
  });

  test('read-by-who: sender in neither list, member_count, read_at', async () => {
    const r = await createGroup(a, 'rbw', [b, c]);
    const m1 = await send(a, r.id, 'who read me');
    let x = await b.api.get(`/api/messages/${m1.id}/read-by-who`);
    assertStatus(x, 200);
    assert.equal(x.body.message_id, m1.id);
    assert.equal(x.body.room_id, r.id);
    assertLike(x.body.read_by, []);
    assertLike(x.body.unread_by.map((e) => e.user_id).sort(), [b.user.id, c.user.id].sort());
    for (const e of x.body.unread_by) assert.equal(e.username, e.user_id === b.user.id ? b.user.username : c.user.username);
    assert.equal(x.body.read_count, 0);
    assert.equal(x.body.member_count, 2);
    const t0 = Date.now();
    await b.api.post(`/api/messages/${m1.id}/read`);
    const t1 = Date.now();
    x = await a.api.get(`/api/messages/${m1.id}/read-by-who`);
    assert.equal(x.body.read_by.length, 1);
    assert.equal(x.body.read_by[0].user_id, b.user.id);
    assert.equal(x.body.read_by[0].username, b.user.username);
    assert.match(x.body.read_by[0].read_at, TIME_RE);
    const ra = Date.parse(x.body.read_by[0].read_at);
    assert.ok(ra >= t0 - 2 && ra <= t1 + 2, `read_at ${x.body.read_by[0].read_at} within the read call`);
    assertLike(x.body.unread_by, [{ user_id: c.user.id, username: c.user.username }]);
    assert.equal(x.body.read_count, 1);
    assert.equal(x.body.member_count, 2);
    // A later read does not change the first read_at.
    await send(a, r.id, 'more');
    await sleep(10);
    await b.api.post(`/api/chatrooms/${r.id}/mark-all-read`);
    const y = await c.api.get(`/api/messages/${m1.id}/read-by-who`);
    assert.equal(y.body.read_by[0].read_at, x.body.read_by[0].read_at);
  });

  test('join rule: a joiner starts at the room\'s last_seq; re-join keeps max(old, last_seq); read_by lists current members only', async () => {
    const [o, j, k] = await Promise.all([newUser(S, 'jo'), newUser(S, 'jj'), newUser(S, 'jk')]);
    const r = await createGroup(o, 'join', [k]);
    const m1 = await send(o, r.id, 'before 1');
    await send(o, r.id, 'before 2');
    await send(k, r.id, 'before 3');
    await sleep(5);
    const t0 = Date.now();
    const add = await k.api.post(`/api/chatrooms/${r.id}/members`, { user_id: j.user.id });
    const t1 = Date.now();
    assertStatus(add, 200);
    assertLike(await unread(j), { unread_counts: { [r.id]: 0 }, total: 0 }, 'history is not unread for a joiner');
    assertLike((await j.api.get(`/api/chatrooms/${r.id}/first-unread`)).body, { message: null, unread_count: 0 });
    const jr = await j.api.get(`/api/chatrooms/${r.id}`);
    assert.equal(jr.body.unread_count, 0);
    assert.equal(jr.body.last_seq, 3);
    // The joiner is in read_by of an older message, read_at = join time.
    let w = await o.api.get(`/api/messages/${m1.id}/read-by-who`);
    assert.equal(w.body.member_count, 2);
    const jEntry = w.body.read_by.find((e) => e.user_id === j.user.id);
    assert.ok(jEntry, 'joiner in read_by');
    const ja = Date.parse(jEntry.read_at);
    assert.ok(ja >= t0 - 2 && ja <= t1 + 2, 'read_at = join time');
    // Mark-all-read right after joining marks nothing.
    assert.equal((await j.api.post(`/api/chatrooms/${r.id}/mark-all-read`)).body.marked, 0);
    await send(o, r.id, 'after join');
    assert.equal((await unread(j)).unread_counts[r.id], 1);
    // Leave, two more messages, re-join: watermark = last_seq (6), not old (3).
    assert.equal((await j.api.del(`/api/chatrooms/${r.id}/members/${j.user.id}`)).status, 204);
    w = await o.api.get(`/api/messages/${m1.id}/read-by-who`);
    assert.equal(w.body.member_count, 1, 'former member not counted');
    assert.ok(![...w.body.read_by, ...w.body.unread_by].some((e) => e.user_id === j.user.id), 'former member in neither list');
    await send(o, r.id, 'while away 1');
    await send(k, r.id, 'while away 2');
    assertStatus(await o.api.post(`/api/chatrooms/${r.id}/members`, { user_id: j.user.id }), 200);
    assertLike(await unread(j), { unread_counts: { [r.id]: 0 }, total: 0 }, 're-join starts at last_seq');
    const h = await j.api.get(`/api/chatrooms/${r.id}/messages`);
    assertLike(seqs(h.body.messages), [1, 2, 3, 4, 5, 6], 'history is visible to the joiner');
  });

  test('scenario: alice, bob, carol — exact numbers for latest, unread-counts, first-unread, mark-all-read, read-by-who', async () => {
    const [alice, bob, carol] = await Promise.all([newUser(S, 'alice'), newUser(S, 'bob'), newUser(S, 'carol')]);
    const g = await createGroup(alice, 'trio', [bob, carol]);
    const d = (await alice.api.post('/api/chatrooms', { type: 'direct', member_ids: [bob.user.id] })).body;
    const m1 = await send(alice, g.id, 'a1');
    const m2 = await send(alice, g.id, 'a2');
    const tb0 = Date.now();
    const m3 = await send(bob, g.id, 'b3');
    const tb1 = Date.now();
    const m4 = await send(alice, g.id, 'a4');
    const tc0 = Date.now();
    const cr = await carol.api.post(`/api/messages/${m2.id}/read`);
    const tc1 = Date.now();
    assertLike(cr.body, { room_id: g.id, up_to_seq: 2, unread_count: 2 });
    assertLike([m1.seq, m2.seq, m3.seq, m4.seq], [1, 2, 3, 4]);
    // Watermarks now: alice 4, bob 3, carol 2. Direct room d: empty.

    // latest
    const la = (await alice.api.get('/api/messages/latest')).body.latest;
    assertLike(Object.fromEntries(la.map((e) => [e.room_id, e.message])), { [g.id]: m4, [d.id]: null });
    const lc = (await carol.api.get('/api/messages/latest')).body.latest;
    assertLike(lc, [{ room_id: g.id, message: m4 }]);

    // unread-counts
    assertLike(await unread(alice), { unread_counts: { [g.id]: 0, [d.id]: 0 }, total: 0 });
    assertLike(await unread(bob), { unread_counts: { [g.id]: 1, [d.id]: 0 }, total: 1 });
    assertLike(await unread(carol), { unread_counts: { [g.id]: 2 }, total: 2 });

    // first-unread
    assertLike((await alice.api.get(`/api/chatrooms/${g.id}/first-unread`)).body, { message: null, unread_count: 0 });
    assertLike((await bob.api.get(`/api/chatrooms/${g.id}/first-unread`)).body, { message: m4, unread_count: 1 });
    assertLike((await carol.api.get(`/api/chatrooms/${g.id}/first-unread`)).body, { message: m3, unread_count: 2 });

    // read-by-who
    const rbw = async (m, who = alice) => {
      const r = await who.api.get(`/api/messages/${m.id}/read-by-who`);
      assertStatus(r, 200);
      r.body.read_by.sort((p, q) => (p.username < q.username ? -1 : 1));
      r.body.unread_by.sort((p, q) => (p.username < q.username ? -1 : 1));
      return r.body;
    };
    const within = (t, lo, hi, what) => { const v = Date.parse(t); assert.ok(v >= lo - 2 && v <= hi + 2, `${what}: ${t}`); };
    let w1 = await rbw(m1, carol);
    assertLike(w1.read_by.map((e) => e.user_id), [bob.user.id, carol.user.id]);
    assertLike(w1.read_by.map((e) => e.username), [bob.user.username, carol.user.username]);
    within(w1.read_by[0].read_at, tb0, tb1, 'bob read m1 when he sent m3');
    within(w1.read_by[1].read_at, tc0, tc1, 'carol read m1 with her read of m2');
    assertLike(w1.unread_by, []);
    assert.equal(w1.read_count, 2);
    assert.equal(w1.member_count, 2);
    assert.equal(w1.message_id, m1.id);
    assert.equal(w1.room_id, g.id);
    const w3 = await rbw(m3);
    assertLike(w3.read_by.map((e) => e.user_id), [alice.user.id]);
    assertLike(w3.unread_by, [{ user_id: carol.user.id, username: carol.user.username }]);
    assert.equal(w3.read_count, 1);
    assert.equal(w3.member_count, 2);
    let w4 = await rbw(m4, bob);
    assertLike(w4.read_by, []);
    assertLike(w4.unread_by, [
      { user_id: bob.user.id, username: bob.user.username }, { user_id: carol.user.id, username: carol.user.username },
    ]);
    assert.equal(w4.read_count, 0);
    assert.equal(w4.member_count, 2);

    // mark-all-read
    await sleep(5);
    const tm0 = Date.now();
    let mar = await carol.api.post(`/api/chatrooms/${g.id}/mark-all-read`);
    const tm1 = Date.now();
    assertLike(mar.body, { room_id: g.id, up_to_seq: 4, unread_count: 0, marked: 2 });
    mar = await carol.api.post(`/api/chatrooms/${g.id}/mark-all-read`);
    assertLike(mar.body, { room_id: g.id, up_to_seq: 4, unread_count: 0, marked: 0 });
    mar = await bob.api.post(`/api/chatrooms/${g.id}/mark-all-read`);
    assertLike(mar.body, { room_id: g.id, up_to_seq: 4, unread_count: 0, marked: 1 });
    mar = await alice.api.post(`/api/chatrooms/${d.id}/mark-all-read`);
    assertLike(mar.body, { room_id: d.id, up_to_seq: 0, unread_count: 0, marked: 0 });

    // After: everyone read everything; m4 read by both (blue ticks), m1's read_at unchanged.
    w4 = await rbw(m4);
    assertLike(w4.read_by.map((e) => e.user_id), [bob.user.id, carol.user.id]);
    within(w4.read_by[1].read_at, tm0, tm1, 'carol read m4 at mark-all-read');
    assert.equal(w4.read_count, 2);
    assert.equal(w4.member_count, 2);
    assertLike(w4.unread_by, []);
    const w1b = await rbw(m1);
    assertLike(w1b.read_by, w1.read_by, 'first read_at kept');
    for (const u of [alice, bob, carol]) assert.equal((await unread(u)).total, 0);
    assertLike((await carol.api.get(`/api/chatrooms/${g.id}/first-unread`)).body, { message: null, unread_count: 0 });

    // One more from carol: alice 1, bob 1, carol 0; first-unread for bob = m5; m5 unread by alice and bob.
    const m5 = await send(carol, g.id, 'c5');
    assert.equal(m5.seq, 5);
    assertLike(await unread(alice), { unread_counts: { [g.id]: 1, [d.id]: 0 }, total: 1 });
    assertLike(await unread(carol), { unread_counts: { [g.id]: 0 }, total: 0 });
    assertLike((await bob.api.get(`/api/chatrooms/${g.id}/first-unread`)).body, { message: m5, unread_count: 1 });
    const w5 = await rbw(m5);
    assertLike(w5.read_by, []);
    assertLike(w5.unread_by.map((e) => e.user_id), [alice.user.id, bob.user.id]);
    assert.equal(w5.member_count, 2);
    const lb = (await bob.api.get('/api/messages/latest')).body.latest;
    assertLike(Object.fromEntries(lb.map((e) => [e.room_id, e.message])), { [g.id]: m5, [d.id]: null });
    const list = (await bob.api.get('/api/chatrooms')).body.chatrooms;
    assertLike(list.map((r) => [r.id, r.last_seq, r.unread_count]), [[g.id, 5, 1], [d.id, 0, 0]]);
    assertLike(list[0].last_message, m5);
  });

  test('invariant under concurrent sends and reads: unread == last_seq − watermark == messages above it from others', async () => {
    const users = await Promise.all(['ia', 'ib', 'ic'].map((p) => newUser(S, p)));
    const room = await createGroup(users[0], 'interleave', users.slice(1));
    const wm = new Map(users.map((u) => [u.user.id, 0]));
    const bump = (u, s) => wm.set(u.user.id, Math.max(wm.get(u.user.id), s));
    const known = [];
    let seed = 12345;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let wave = 0; wave < 6; wave++) {
      const ops = [];
      for (let i = 0; i < 12; i++) {
        const u = users[rnd(3)];
        const kind = rnd(10);
        if (kind < 6 || known.length === 0) {
          ops.push(u.api.post(`/api/chatrooms/${room.id}/messages`, { content: `w${wave} op${i}` }).then((r) => {
            assertStatus(r, 201); known.push(r.body); bump(u, r.body.seq);
          }));
        } else if (kind < 9) {
          const m = known[rnd(known.length)];
          ops.push(u.api.post(`/api/messages/${m.id}/read`).then((r) => {
            assertStatus(r, 200); assert.ok(r.body.up_to_seq >= m.seq); bump(u, r.body.up_to_seq);
          }));
        } else {
          ops.push(u.api.post(`/api/chatrooms/${room.id}/mark-all-read`).then((r) => {
            assertStatus(r, 200); assert.equal(r.body.unread_count, 0); bump(u, r.body.up_to_seq);
          }));
        }
      }
      await Promise.all(ops);
    }
    const lastSeq = known.length;
    assert.deepEqual(known.map((m) => m.seq).sort((p, q) => p - q), range(1, lastSeq), 'gap-free');
    const h = await users[0].api.get(`/api/chatrooms/${room.id}/messages?limit=200`);
    assert.equal(h.body.messages.length, lastSeq);
    for (const u of users) {
      const w = wm.get(u.user.id);
      const expected = lastSeq - w;
      const fromOthers = h.body.messages.filter((m) => m.seq > w && m.sender_id !== u.user.id).length;
      assert.equal(fromOthers, expected, `${u.user.username}: own messages are never above the watermark`);
      assertLike(await unread(u), { unread_counts: { [room.id]: expected }, total: expected }, `${u.user.username} unread-counts`);
      const r = await u.api.get(`/api/chatrooms/${room.id}`);
      assert.equal(r.body.unread_count, expected, 'room.unread_count');
      assert.equal(r.body.last_seq, lastSeq);
      const f = await u.api.get(`/api/chatrooms/${room.id}/first-unread`);
      assert.equal(f.body.unread_count, expected, 'first-unread count');
      assert.equal(f.body.message === null ? null : f.body.message.seq, expected ? w + 1 : null, 'first-unread message');
      const mar = await u.api.post(`/api/chatrooms/${room.id}/mark-all-read`);
      assertLike(mar.body, { room_id: room.id, up_to_seq: lastSeq, unread_count: 0, marked: expected });
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('rate limit (429)', () => {
  test('per user: burst 3 then 429 rate_limited with Retry-After: 1; other users unaffected; refills', async () => {
    const R = await startServer({ rateLimit: true, args: ['--rate-limit-per-sec', '1', '--rate-limit-burst', '3'] });
    try {
      const x = await newUser(R, 'rl');
      const y = await newUser(R, 'rm');
      const res = await Promise.all(Array.from({ length: 5 }, () => x.api.get('/api/me')));
      const statuses = res.map((r) => r.status).sort();
      assertLike(statuses, [200, 200, 200, 429, 429], `statuses ${statuses}`);
      const limited = res.find((r) => r.status === 429);
      assertError(limited, 429, 'rate_limited');
      assert.equal(limited.headers.get('retry-after'), '1', 'Retry-After in whole seconds: 1 token at 1/s');
      assertStatus(await y.api.get('/api/me'), 200, 'another user has their own bucket');
      await sleep(1100);
      assertStatus(await x.api.get('/api/me'), 200, 'refilled after 1 s');
    } finally {
      await R.close();
    }
  });

  test('per IP for login and requests without a valid token', async () => {
    const R = await startServer({ rateLimit: true, args: ['--rate-limit-per-sec', '1', '--rate-limit-burst', '3'] });
    try {
      const c = client(R.url);
      const res = await Promise.all(Array.from({ length: 5 }, () => c.post('/api/auth/login', { username: 'nobody_here', password: 'password123' })));
      const statuses = res.map((r) => r.status).sort();
      assertLike(statuses, [401, 401, 401, 429, 429], `statuses ${statuses}`);
      const limited = res.find((r) => r.status === 429);
      assertError(limited, 429, 'rate_limited');
      const ra = Number(limited.headers.get('retry-after'));
      assert.ok(Number.isInteger(ra) && ra >= 1, `Retry-After ${limited.headers.get('retry-after')}`);
    } finally {
      await R.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('no 5xx', () => {
  test('odd requests never yield a 5xx', async () => {
    const u = await newUser(S, 'odd');
    const r = await createGroup(u, 'odd');
    const probes = [
      ['GET', `/api/chatrooms/${r.id}/messages?limit=99999999999999999999999`],
      ['GET', `/api/chatrooms/${r.id}/messages?before_seq=99999999999999999999999`],
      ['GET', `/api/chatrooms/${r.id}/messages?after_seq=9223372036854775808`],
      ['GET', `/api/chatrooms/99999999999999999999999999`],
      ['GET', `/api/users?query=%FF%FE`],
      ['GET', `/api/users?query=%00`],
      ['POST', '/api/chatrooms', '{"name":"x","member_ids":[' + '"1",'.repeat(1000) + '"1"]}'],
      ['POST', '/api/chatrooms', '{"name":' + '['.repeat(10000) + ']'.repeat(10000) + '}'],
      ['POST', `/api/chatrooms/${r.id}/messages`, '{"content":"x","content":"y"}'],
      ['POST', `/api/chatrooms/${r.id}/messages`, '{"content":"\\u0000"}'],
      ['POST', '/api/messages/read', '{"message_ids":[' + '"1",'.repeat(600) + '"1"]}'],
    ];
    for (const [m, p, b] of probes) {
      const x = await raw(S.url, m, p, { token: u.token, body: b });
      assert.ok(x.status < 500, `${m} ${p.slice(0, 60)} → ${x.status} ${x.text.slice(0, 200)}`);
    }
    assertStatus(await raw(S.url, 'GET', '/healthz'), 200, 'still alive');
  });
});
