// new_message deliveries per second with many connected WebSocket clients.
// Usage: node bench/ws_fanout.mjs [--bin build/release/parley] [--users 50] [--per-user 20]
//        [--messages 1000] [--concurrency 16]
// One room holds every user; each user keeps --per-user sidebar sockets; one more user sends
// --messages messages over REST (--concurrency at a time). Every socket must receive every
// message (checked); the rate is deliveries / time from the first send to the last delivery.
import WebSocket from '../tests/node_modules/ws/wrapper.mjs';
import { arg, register, startBenchServer } from './lib.mjs';

const BIN = arg('bin', 'build/release/parley');
const USERS = +arg('users', 50), PER_USER = +arg('per-user', 20), MESSAGES = +arg('messages', 1000);
const CONC = +arg('concurrency', 16);

const server = await startBenchServer(BIN);
const { base, rss, cpu } = server;
const post = async (path, body, token) => {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return r.json();
};
const reg = (name) => register(base, name);

const users = [];
for (let i = 0; i < USERS; i += 8) users.push(...await Promise.all(Array.from({ length: Math.min(8, USERS - i) }, (_, k) => reg(`bench_u${i + k}`))));
const sender = await reg("bench_sender");
const room = await post('/api/chatrooms', { name: 'bench', member_ids: users.map((u) => u.user.id) }, sender.token);

const rssBefore = rss();
let delivered = 0, lastDelivery = 0, frames = 0;
const closes = {};
const perSocket = [];
const sockets = [];
const wsBase = base.replace('http', 'ws');
for (const u of users) {
  for (let k = 0; k < PER_USER; k++) {
    const ws = new WebSocket(`${wsBase}/ws?token=${u.token}`);
    const idx = perSocket.push(0) - 1;
    ws.on('close', (code) => { closes[code] = (closes[code] ?? 0) + 1; });
    ws.on('message', (d) => {
      frames++;
      if (d.length > 20 && d.toString('utf8', 0, 22).includes('new_message')) {
        perSocket[idx]++; delivered++; lastDelivery = performance.now();
      }
    });
    sockets.push(new Promise((res, rej) => { ws.once('open', () => res(ws)); ws.once('error', rej); }));
  }
}
const opened = await Promise.all(sockets);
await new Promise((r) => setTimeout(r, 500));
const rssConnected = rss();

const cpu0 = cpu(), clientCpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: CONC }, async () => {
  while (next < MESSAGES) { const i = next++; await post(`/api/chatrooms/${room.id}/messages`, { content: `m${i}` }, sender.token); }
}));
const sendDone = performance.now();
const expected = MESSAGES * opened.length;
while (delivered < expected && performance.now() - sendDone < 30000) await new Promise((r) => setTimeout(r, 20));
const secs = (lastDelivery - t0) / 1000;
const serverCpu = cpu() - cpu0, cu = process.cpuUsage(clientCpu0), clientCpu = (cu.user + cu.system) / 1e6;
const missing = perSocket.filter((n) => n !== MESSAGES).length;
console.log(JSON.stringify({
  connections: opened.length, messages: MESSAGES, deliveries: delivered, expected,
  sockets_incomplete: missing, frames_received: frames, closes, seconds: +secs.toFixed(2), deliveries_per_sec: Math.round(delivered / secs),
  server_cpu_s: +serverCpu.toFixed(2), client_cpu_s: +clientCpu.toFixed(2),
  deliveries_per_server_cpu_s: Math.round(delivered / serverCpu),
  sends_per_sec: Math.round(MESSAGES / ((sendDone - t0) / 1000)),
  rss_kib_before_sockets: rssBefore, rss_kib_connected: rssConnected,
  rss_kib_per_connection: +((rssConnected - rssBefore) / opened.length).toFixed(1),
}));
for (const ws of opened) ws.terminate();
await server.stop();
process.exit(missing ? 1 : 0);
