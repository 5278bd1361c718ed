#!/usr/bin/env node
// A minimal WebSocket client for trying Parley by hand: prints every frame it receives and
// sends each line typed on stdin as a text frame.
// Usage: node tests/ws-client.mjs "ws://127.0.0.1:8080/ws?token=$TOKEN"
// (run `cd tests && npm ci` once, or `bash scripts/test.sh`, to install the `ws` package)
import WebSocket from 'ws';
import { createInterface } from 'node:readline';

const url = process.argv[2];
if (!url) {
  console.error('usage: node tests/ws-client.mjs ws://HOST:PORT/ws?token=JWT');
  process.exit(2);
}
const ws = new WebSocket(url);
ws.on('unexpected-response', (_req, res) => {
  let body = '';
  res.on('data', (d) => { body += d; });
  res.on('end', () => { console.error(`refused: HTTP ${res.statusCode} ${body}`); process.exit(1); });
});
ws.on('open', () => console.error('connected; type JSON frames, e.g. {"type":"ping","data":{"timestamp":1}}'));
ws.on('message', (data) => console.log(String(data)));
ws.on('close', (code, reason) => { console.error(`closed ${code} ${reason}`); process.exit(0); });
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
createInterface({ input: process.stdin }).on('line', (line) => { if (line.trim()) ws.send(line); });
