// Abuse limits: the client IP behind a trusted proxy (--trusted-proxy), concurrent
// connections per IP (--max-connections-per-ip), failed logins per username and per IP
// (--login-failures-per-user / --login-failures-per-ip), and the header and handshake timeouts
// (--http-header-timeout-ms, --ws-handshake-timeout-ms).
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/limits.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, newUser } from './lib/server.mjs';
import { NO_COOLDOWN } from './lib/suite.mjs';
import { raw, sleep } from './lib/rest-helpers.mjs';
import { rawConnect, buildFrame } from './lib/ws-client.mjs';

process.env.PARLEY_TEST_LOG_LEVEL = 'info'; // the access log shows the client IP
const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.close())); });
async function server(args, opts = {}) {
  const s = await startServer({ args, ...opts });
  servers.push(s);
  return s;
}
const portOf = (url) => Number(new URL(url).port);
const xff = (v) => ({ 'X-Forwarded-For': v });
const login = (s, username, password, headers = {}) =>
  raw(s.url, 'POST', '/api/auth/login', { body: JSON.stringify({ username, password }), headers });

// An unauthenticated /api request: 401, or 429 once the caller's per-IP bucket is empty.
const anon = (s, headers) => raw(s.url, 'GET', '/api/me', { headers }).then((r) => r.status);

test('--trusted-proxy: per-IP limits key on the last untrusted X-Forwarded-For hop', async () => {
  const s = await server(['--trusted-proxy', '127.0.0.1/32', '--rate-limit-per-sec', '0.01', '--rate-limit-burst', '2'],
    { rateLimit: true });
  assert.deepEqual([await anon(s, xff('198.51.100.1')), await anon(s, xff('198.51.100.1'))], [401, 401]);
  assert.equal(await anon(s, xff('198.51.100.1')), 429, 'the third request of one client is limited');
  assert.equal(await anon(s, xff('198.51.100.2')), 401, 'another client behind the same proxy has its own bucket');
  // Forged hops on the left do not change who the client is.
  assert.equal(await anon(s, xff('203.0.113.50, 198.51.100.1')), 429, 'a forged left hop does not help');
  // A chain through a second trusted proxy is walked to the client.
  assert.equal(await anon(s, { 'X-Forwarded-For': '198.51.100.3, 127.0.0.1' }), 401);
  assert.equal(await anon(s, { 'X-Forwarded-For': '198.51.100.3, 127.0.0.1' }), 401);
  assert.equal(await anon(s, xff('198.51.100.3')), 429, 'the same client through one hop or two');
  await sleep(100);
  assert.match(s.stderr, /ip=198\.51\.100\.2\b/, 'the access log names the client, not the proxy');
});

test('without --trusted-proxy X-Forwarded-For is ignored', async () => {
  const s = await server(['--rate-limit-per-sec', '0.01', '--rate-limit-burst', '2'], { rateLimit: true });
  assert.equal(await anon(s, xff('198.51.100.1')), 401);
  assert.equal(await anon(s, xff('198.51.100.2')), 401);
  assert.equal(await anon(s, xff('198.51.100.3')), 429, 'every request counts against the socket peer');
});

// Opens a raw TCP connection and resolves once it is connected; .answer() resolves with the
// first bytes the server sends (or '' when it closes without any).
function tcp(url) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(portOf(url), '127.0.0.1');
    let data = '';
    let closed = false;
    const waiters = [];
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; waiters.forEach((w) => w()); });
    sock.on('connect', () => resolve({
      sock,
      get closed() { return closed; },
      closedWithin: (ms) => new Promise((r) => {
        if (closed) return r(data);
        const t = setTimeout(() => r(null), ms);
        waiters.push(() => { clearTimeout(t); r(data); });
      }),
    }));
    sock.on('error', reject);
  });
}

test('--max-connections-per-ip: one more direct connection is answered 429 and closed', async () => {
  const s = await server(['--max-connections-per-ip', '3']);
  const held = [await tcp(s.url), await tcp(s.url), await tcp(s.url)];
  await sleep(100);
  const extra = await tcp(s.url);
  const answer = await extra.closedWithin(3000);
  assert.notEqual(answer, null, 'the fourth connection is closed by the server');
  assert.match(answer, /^HTTP\/1\.1 429/, answer);
  assert.match(answer, /Retry-After: 1/i);
  assert.match(answer, /"code":"too_many_connections"/);
  for (const h of held) assert.equal(h.closed, false, 'the three held connections stay open');
  held[0].sock.destroy();
  await sleep(200);
  const again = await tcp(s.url);
  again.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(await again.closedWithin(3000), /^HTTP\/1\.1 200/, 'a freed slot serves again');
  held.slice(1).forEach((h) => h.sock.destroy());
});

test('--max-connections-per-ip behind a trusted proxy: WebSocket connections count per forwarded client', async () => {
  const s = await server(['--max-connections-per-ip', '2', '--trusted-proxy', '127.0.0.1', ...NO_COOLDOWN]);
  const u = await newUser(s, 'cap');
  const ws = (ip) => rawConnect(s.url, `/ws?token=${u.token}`, { headers: xff(ip) });
  const a1 = await ws('198.51.100.7');
  const a2 = await ws('198.51.100.7');
  assert.deepEqual([a1.status, a2.status], [101, 101]);
  const a3 = await ws('198.51.100.7');
  assert.equal(a3.status, 429, a3.headText);
  assert.match(a3.headText, /Retry-After: 1/i);
  const b1 = await ws('198.51.100.8');
  assert.equal(b1.status, 101, 'another client behind the proxy is not affected');
  a1.sock.destroy();
  await sleep(200);
  const a4 = await ws('198.51.100.7');
  assert.equal(a4.status, 101, 'a closed socket frees its slot');
  for (const c of [a2, a3, b1, a4]) c.sock.destroy();
});

test('--login-failures-per-user: failed logins of one account are limited from any address', async () => {
  const s = await server(['--login-failures-per-user', '3', '--login-failures-per-ip', '0', '--trusted-proxy', '127.0.0.1']);
  const u = await newUser(s, 'victim');
  const other = await newUser(s, 'bystander');
  for (let i = 0; i < 3; i++) {
    const r = await login(s, u.user.username, 'wrong-password', xff(`198.51.100.${10 + i}`));
    assert.equal(r.status, 401, `failure ${i + 1}`);
  }
  const locked = await login(s, u.user.username.toUpperCase(), 'password123', xff('198.51.100.99'));
  assert.equal(locked.status, 429, 'even the right password waits once the failures are spent');
  assert.equal(locked.body.error.code, 'rate_limited');
  const wait = Number(locked.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 20, `Retry-After ${wait}: 60 s / 3 failures`);
  assert.equal((await login(s, other.user.username, 'password123')).status, 200, 'other accounts are not affected');
});

test('--login-failures-per-ip: failed logins from one address are limited across usernames', async () => {
  const s = await server(['--login-failures-per-user', '0', '--login-failures-per-ip', '3', '--trusted-proxy', '127.0.0.1']);
  const u = await newUser(s, 'spray');
  for (const name of ['nobody1', 'nobody2', 'nobody3'])
    assert.equal((await login(s, name, 'password123', xff('198.51.100.20'))).status, 401, name);
  const r = await login(s, u.user.username, 'password123', xff('198.51.100.20'));
  assert.equal(r.status, 429, 'the fourth attempt from that address waits');
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal((await login(s, u.user.username, 'password123', xff('198.51.100.21'))).status, 200, 'another address logs in');
});

test('--http-header-timeout-ms cuts a slow header; the request timeout still covers the body', async () => {
  const s = await server(['--http-header-timeout-ms', '300', '--http-request-timeout-ms', '5000']);
  const slow = await tcp(s.url);
  const t0 = Date.now();
  slow.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const cut = await slow.closedWithin(4000);
  const took = Date.now() - t0;
  assert.notEqual(cut, null, 'an unfinished header is cut');
  assert.ok(took >= 250 && took < 2500, `cut after ${took} ms`);
  // A whole header in time, then a body that takes longer than the header timeout: served.
  const body = await tcp(s.url);
  body.sock.write('POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
    + 'Content-Length: 44\r\nConnection: close\r\n\r\n{"username":"');
  await sleep(800);
  assert.equal(body.closed, false, 'the body may take longer than the header timeout');
  body.sock.write('nobody","password":"password1"}  ');
  assert.match(await body.closedWithin(4000), /^HTTP\/1\.1 401/, 'the request is answered');
});

test('--ws-handshake-timeout-ms: a client that never answers the close handshake is cut', async () => {
  // The server closes a chatroom socket when its user leaves the room (1008), then waits this
  // long for the client's close frame before it drops the TCP connection.
  const s = await server(['--ws-handshake-timeout-ms', '600', ...NO_COOLDOWN]);
  const u = await newUser(s, 'hs');
  const room = await u.api.post('/api/chatrooms', { name: 'hs', member_ids: [] });
  assert.equal(room.status, 201);
  const c = await rawConnect(s.url, `/api/ws?token=${u.token}&room_id=${room.body.id}`); // never answers a close
  assert.equal(c.status, 101);
  await sleep(100);
  assert.equal((await u.api.del(`/api/chatrooms/${room.body.id}/members/${u.user.id}`)).status, 204);
  const r = await c.waitClose(5000);
  assert.equal(r.code, 1008, `the server sends a close frame: ${JSON.stringify(r)}`);
  const sentAt = Date.now();
  while (!c.ended && Date.now() - sentAt < 5000) await c.changed(5000 - (Date.now() - sentAt));
  const ended = Date.now() - sentAt;
  assert.ok(c.ended, 'the TCP connection ends without our close frame');
  assert.ok(ended >= 400 && ended < 3000, `cut ${ended} ms after the close frame (handshake timeout 600 ms)`);
});

test('a wrong old password in POST /api/auth/password counts as a failed login of that user', async () => {
  const s = await server(['--login-failures-per-user', '2', '--login-failures-per-ip', '0']);
  const u = await newUser(s, 'pwguess');
  const change = (old) => u.api.post('/api/auth/password', { old_password: old, new_password: 'new-password-1' });
  assert.equal((await change('guess-one1')).status, 403);
  assert.equal((await change('guess-two2')).status, 403);
  const r = await change('password123');
  assert.equal(r.status, 429, 'a token cannot be used to guess the password faster than a login');
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal((await login(s, u.user.username, 'password123')).status, 429, 'login shares the budget');
});
