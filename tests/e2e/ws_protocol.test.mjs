// RFC 6455 conformance of the WebSocket endpoints, with a raw TCP client, a hand-made
// upgrade request and hand-built frames (../../../shared/CONTRACT.md, "WebSocket": protocol
// violations close with the RFC's code — 1002, 1007, 1009; frames over 64 KiB → 1009;
// permessage-deflate is not negotiated).
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/ws_protocol.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, newUser } from './lib/server.mjs';
import { rawConnect, buildFrame, expectedAccept } from './lib/ws-client.mjs';

const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };
let S;
let U;
before(async () => {
  S = await startServer({ args: ['--ws-cooldown-ms', '0'] });
  U = await newUser(S, 'proto');
});
const socks = [];
after(async () => {
  for (const s of socks) s.destroy();
  await S?.close();
});

// A raw, upgraded sidebar connection that has received its `connected` frame.
async function upgraded(headers = {}) {
  const c = await rawConnect(S.url, `/ws?token=${U.token}`, { headers });
  socks.push(c.sock);
  assert.equal(c.status, 101, c.headText);
  const deadline = Date.now() + 3000;
  while (!c.frames.some((f) => f.opcode === OP.text) && Date.now() < deadline) await c.changed(deadline - Date.now());
  const first = c.frames.find((f) => f.opcode === OP.text);
  assert.ok(first, 'connected frame');
  assert.equal(JSON.parse(first.payload.toString()).type, 'connected');
  return c;
}

// Sends `bytes` and expects a close frame with `code`, then the end of the TCP connection.
async function expectClose(c, bytes, code, what) {
  c.write(bytes);
  const r = await c.waitClose(5000);
  assert.ok(r.closeFrame, `${what}: the server sent a close frame (got ${JSON.stringify(r)})`);
  assert.equal(r.code, code, `${what}: close code`);
  // The server's close frame is unmasked and final.
  const cf = c.frames.find((f) => f.opcode === OP.close);
  assert.equal(cf.masked, false, `${what}: server frames are not masked`);
  assert.equal(cf.fin, true);
  // After a protocol error the server ends the TCP connection (possibly after our close reply).
  c.write(buildFrame(OP.close, Buffer.from([code >> 8, code & 0xff])));
  const deadline = Date.now() + 5000;
  while (!c.ended && Date.now() < deadline) await c.changed(deadline - Date.now());
  assert.ok(c.ended, `${what}: TCP connection ended`);
}

test('handshake: 101 with the right Sec-WebSocket-Accept; permessage-deflate offered but not negotiated', async () => {
  const c = await upgraded({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
  assert.equal(c.headers['sec-websocket-accept'], expectedAccept(c.key));
  assert.match(c.headers.upgrade ?? '', /^websocket$/i);
  assert.match(c.headers.connection ?? '', /upgrade/i);
  assert.equal(c.headers['sec-websocket-extensions'], undefined, `no extension negotiated: ${c.headText}`);
  // Server frames are unmasked, final, with no RSV bits.
  for (const f of c.frames) {
    assert.equal(f.masked, false);
    assert.equal(f.rsv, 0, 'no RSV bits (no compression)');
  }
  // A masked text frame works: ping → pong.
  c.write(buildFrame(OP.text, '{"type":"ping","data":{"timestamp":5}}'));
  const deadline = Date.now() + 3000;
  while (!c.texts().some((t) => t.type === 'pong') && Date.now() < deadline) await c.changed(deadline - Date.now());
  const pong = c.texts().find((t) => t.type === 'pong');
  assert.equal(pong?.data.timestamp, 5);
  assert.ok(c.frames.every((f) => f.rsv === 0 && !f.masked));
});

test('control frames: ping → pong with the same payload; close 1000 → close echoed and TCP ended', async () => {
  const c = await upgraded();
  c.write(buildFrame(OP.ping, 'abc123'));
  let deadline = Date.now() + 3000;
  while (!c.frames.some((f) => f.opcode === OP.pong) && Date.now() < deadline) await c.changed(deadline - Date.now());
  const pong = c.frames.find((f) => f.opcode === OP.pong);
  assert.ok(pong, 'pong frame');
  assert.equal(pong.payload.toString(), 'abc123');
  c.write(buildFrame(OP.close, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])));
  const r = await c.waitClose(3000);
  assert.equal(r.code, 1000, 'close echoed with 1000');
  deadline = Date.now() + 3000;
  while (!c.ended && Date.now() < deadline) await c.changed(deadline - Date.now());
  assert.ok(c.ended, 'TCP ended after the close handshake');
});

test('frames sent the moment the 101 arrives (before `connected`) are all answered', async () => {
  // The server starts reading right after its 101; nothing sent in that window may wait for a
  // later packet (ten rounds, each on a fresh socket).
  for (let round = 0; round < 10; round++) {
    const c = await rawConnect(S.url, `/ws?token=${U.token}`);
    socks.push(c.sock);
    assert.equal(c.status, 101, c.headText);
    c.write(Buffer.concat([buildFrame(OP.text, `{"type":"ping","data":{"timestamp":${round}}}`), buildFrame(OP.ping, 'p')]));
    const deadline = Date.now() + 3000;
    const answered = () => c.texts().some((t) => t.type === 'pong') && c.frames.some((f) => f.opcode === OP.pong);
    while (!answered() && Date.now() < deadline) await c.changed(deadline - Date.now());
    assert.equal(c.texts().find((t) => t.type === 'pong')?.data.timestamp, round, `round ${round}: text ping answered`);
    assert.equal(c.frames.find((f) => f.opcode === OP.pong)?.payload.toString(), 'p', `round ${round}: ping frame answered`);
    c.sock.destroy();
  }
});

test('unmasked client frame → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.text, '{"type":"ping","data":{"timestamp":1}}', { mask: false }), 1002, 'unmasked');
});

test('RSV1 set → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.text, '{"type":"ping","data":{"timestamp":1}}', { rsv: 0x40 }), 1002, 'RSV1');
});

test('RSV2 set → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.text, '{"type":"ping","data":{"timestamp":1}}', { rsv: 0x20 }), 1002, 'RSV2');
});

test('RSV3 set → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.text, '{"type":"ping","data":{"timestamp":1}}', { rsv: 0x10 }), 1002, 'RSV3');
});

test('fragmented control frame (ping with FIN=0) → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.ping, 'x', { fin: false }), 1002, 'fragmented ping');
});

test('control frame with a payload over 125 bytes → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.ping, Buffer.alloc(126, 0x61)), 1002, 'long ping');
});

test('reserved opcode → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(0x3, 'x'), 1002, 'opcode 3');
});

test('continuation frame without a started message → close 1002', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.cont, 'x'), 1002, 'lone continuation');
});

test('a frame larger than 64 KiB → close 1009', async () => {
  const c = await upgraded();
  await expectClose(c, buildFrame(OP.text, Buffer.alloc(64 * 1024 + 1, 0x61)), 1009, '64 KiB + 1');
});

test('a fragmented message larger than 64 KiB in total → close 1009', async () => {
  const c = await upgraded();
  const part = Buffer.alloc(40 * 1024, 0x61);
  await expectClose(c, Buffer.concat([
    buildFrame(OP.text, part, { fin: false }), buildFrame(OP.cont, part, { fin: true }),
  ]), 1009, 'two 40 KiB fragments');
});

test('a 64 KiB frame exactly is accepted (error or answer, connection open)', async () => {
  const c = await upgraded();
  const head = '{"type":"ping","data":{"timestamp":9},"pad":"';
  const tail = '"}';
  const body = head + 'p'.repeat(64 * 1024 - head.length - tail.length) + tail;
  assert.equal(Buffer.byteLength(body), 64 * 1024);
  c.write(buildFrame(OP.text, body));
  const deadline = Date.now() + 3000;
  while (!c.texts().some((t) => t.type === 'pong' || t.type === 'error') && !c.ended && Date.now() < deadline) {
    await c.changed(deadline - Date.now());
  }
  assert.ok(!c.frames.some((f) => f.opcode === OP.close), `no close: ${JSON.stringify(c.frames.filter((f) => f.opcode === OP.close).map((f) => f.payload.toString('hex')))}`);
  assert.equal(c.texts().find((t) => t.type === 'pong')?.data.timestamp, 9, 'answered');
});

test('text frame with invalid UTF-8 → close 1007', async () => {
  const c = await upgraded();
  const bad = Buffer.concat([Buffer.from('{"type":"ping","data":{"timestamp":1},"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  await expectClose(c, buildFrame(OP.text, bad), 1007, 'invalid UTF-8');
});

test('invalid UTF-8 split across fragments (overlong encoding) → close 1007', async () => {
  const c = await upgraded();
  await expectClose(c, Buffer.concat([
    buildFrame(OP.text, Buffer.from('{"a":"'), { fin: false }),
    buildFrame(OP.cont, Buffer.from([0xc0, 0xaf]), { fin: false }),
    buildFrame(OP.cont, Buffer.from('"}'), { fin: true }),
  ]), 1007, 'overlong');
});

test('chatroom endpoint enforces the same rules (unmasked → 1002)', async () => {
  const other = await newUser(S, 'proto');
  const r = await U.api.post('/api/chatrooms', { name: 'p', member_ids: [other.user.id] });
  assert.equal(r.status, 201);
  const c = await rawConnect(S.url, `/api/ws?token=${U.token}&room_id=${r.body.id}`,
    { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
  socks.push(c.sock);
  assert.equal(c.status, 101);
  assert.equal(c.headers['sec-websocket-extensions'], undefined);
  const deadline = Date.now() + 3000;
  while (!c.frames.some((f) => f.opcode === OP.text) && Date.now() < deadline) await c.changed(deadline - Date.now());
  await expectClose(c, buildFrame(OP.text, 'x', { mask: false }), 1002, 'chatroom unmasked');
});
