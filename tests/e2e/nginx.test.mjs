// deploy/nginx/parley.conf in front of Parley: REST and WebSockets pass through, and with
// --trusted-proxy the server sees the client's address (the one nginx saw), not nginx's and
// not a forged X-Forwarded-For.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/nginx.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, newUser } from './lib/server.mjs';
import { startNginx } from './lib/nginx.mjs';
import { sleep } from './lib/rest-helpers.mjs';
import { open } from './lib/ws-client.mjs';

process.env.PARLEY_TEST_LOG_LEVEL = 'info'; // the access log names the client IP
let S;
let N;
before(async () => {
  S = await startServer({ args: ['--trusted-proxy', '127.0.0.1', '--ws-cooldown-ms', '0',
    '--rate-limit-per-sec', '0.01', '--rate-limit-burst', '3'], rateLimit: true });
  N = await startNginx([S.url]);
});
after(async () => { await N?.close(); await S?.close(); });

// A request to nginx from a chosen loopback source address.
function from(localAddress, method, path, { headers = {}, body } = {}) {
  const { port } = new URL(N.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(port), localAddress, method, path,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('REST and both WebSocket endpoints work through nginx', async () => {
  const viaNginx = { ...S, url: N.url };
  const a = await newUser(viaNginx, 'ngx');
  const b = await newUser(viaNginx, 'ngy');
  const room = await a.api.post('/api/chatrooms', { name: 'through nginx', member_ids: [b.user.id] });
  assert.equal(room.status, 201);
  const side = await open(N.url, `/ws?token=${b.token}`);
  const chat = await open(N.url, `/api/ws?token=${b.token}&room_id=${room.body.id}`);
  try {
    const sent = await a.api.post(`/api/chatrooms/${room.body.id}/messages`, { content: 'hello via nginx' });
    assert.equal(sent.status, 201);
    const onChat = await chat.next('new_message');
    assert.equal(onChat.data.content, 'hello via nginx');
    assert.equal(onChat.data.seq, 1);
    const badge = await side.next((e) => e.type === 'unread_count_update' && e.data.unread_count === 1);
    assert.equal(badge.data.room_id, room.body.id);
  } finally {
    side.close();
    chat.close();
  }
});

test('with --trusted-proxy the server sees the address nginx saw, whatever X-Forwarded-For the client sends', async () => {
  // 127.0.0.7 spends its per-IP bucket (3) on unauthenticated requests, forging hops on the left.
  const statuses = [];
  for (let i = 0; i < 4; i++)
    statuses.push((await from('127.0.0.7', 'GET', '/api/me', { headers: { 'X-Forwarded-For': `203.0.113.${i}` } })).status);
  assert.deepEqual(statuses, [401, 401, 401, 429], 'forged left hops do not give fresh buckets');
  // Another client address behind the same nginx has its own bucket.
  assert.equal((await from('127.0.0.8', 'GET', '/api/me')).status, 401);
  await sleep(100);
  assert.match(S.stderr, /GET \/api\/me 401 [\d.]+ms ip=127\.0\.0\.7\b/, 'the access log names the client');
  assert.doesNotMatch(S.stderr, /ip=203\.0\.113\./, 'a forged hop is never believed');
});
