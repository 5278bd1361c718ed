// Idle WebSocket connections held by one server process, and server RSS per connection.
// Usage: node bench/ws_idle.mjs [--bin build/release/parley] [--connections 10000] [--users 100]
// Opens --connections sidebar sockets spread over --users users (cooldown off), waits until
// the server's connection gauge shows them all, then reads the server's VmRSS.
import WebSocket from '../tests/node_modules/ws/wrapper.mjs';
import { arg, register, startBenchServer } from './lib.mjs';

const BIN = arg('bin', 'build/release/parley');
const N = +arg('connections', 10000), USERS = +arg('users', 100);
const server = await startBenchServer(BIN);
const { base, rss } = server;
const gauge = async () => {
  const t = await (await fetch(`${base}/metrics`)).text();
  return +(t.match(/parley_ws_connections\{endpoint="sidebar"\} (\d+)/)?.[1] ?? 0);
};
const users = [];
for (let i = 0; i < USERS; i += 8)
  users.push(...await Promise.all(Array.from({ length: Math.min(8, USERS - i) }, async (_, k) => {
    return register(base, `idle_${i + k}`);
  })));
const rssBefore = rss();
const sockets = [];
const t0 = performance.now();
for (let i = 0; i < N; i += 200) {
  const batch = [];
  for (let k = i; k < Math.min(N, i + 200); k++) {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?token=${users[k % USERS].token}`);
    batch.push(new Promise((res, rej) => { ws.once('open', () => res(ws)); ws.once('error', rej); }));
  }
  sockets.push(...await Promise.all(batch));
}
const openSecs = (performance.now() - t0) / 1000;
while (await gauge() < N) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 1000));
const rssAfter = rss();
console.log(JSON.stringify({
  connections: sockets.length, server_gauge: await gauge(), open_seconds: +openSecs.toFixed(2),
  rss_kib_before: rssBefore, rss_kib_after: rssAfter,
  rss_kib_per_idle_connection: +((rssAfter - rssBefore) / N).toFixed(2),
}));
for (const ws of sockets) ws.terminate();
await server.stop();
