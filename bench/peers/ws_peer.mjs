// A Node `ws` server doing Parley's fan-out job, for bench/compare.sh: one process, one room
// that every connected socket belongs to. A `send_message` from any socket gets the room's
// next seq and goes to every *other* socket as
//   {"type":"new_message","data":{"room_id":"bench","seq":N,"content":"…"}}
// (serialised once, sent to each), and the sender gets
//   {"type":"ack","data":{"client_msg_id":"…","message":{"room_id":"bench","seq":N,"content":"…"}}}.
// A socket gets {"type":"connected","data":{"connection_id":N}} first, as on Parley.
// No permessage-deflate, no persistence (Parley fsyncs every message to SQLite; this keeps
// nothing), no authentication. Usage: node ws_peer.mjs --port 0 (prints LISTENING port=N).
import { WebSocketServer } from 'ws';
import { parseArgs, checkSend, MAX_BUFFERED_BYTES, listening, onSignals } from './common.mjs';

const opts = parseArgs(process.argv);
const wss = new WebSocketServer({ host: opts.host, port: opts.port, perMessageDeflate: false, maxPayload: 64 * 1024 });
let seq = 0, nextId = 0;

wss.on('connection', (ws) => {
  ws.send(`{"type":"connected","data":{"connection_id":${++nextId}}}`);
  ws.on('message', (raw, isBinary) => {
    let f;
    try { f = isBinary ? null : JSON.parse(raw); } catch { f = null; }
    if (!f || f.type !== 'send_message') {
      ws.send(JSON.stringify({ type: 'error', data: { code: f ? 'unknown_type' : 'invalid_json' } }));
      return;
    }
    const d = f.data, bad = checkSend(d);
    if (bad) {
      ws.send(JSON.stringify({ type: 'error', data: { code: bad, client_msg_id: d?.client_msg_id } }));
      return;
    }
    const message = { room_id: 'bench', seq: ++seq, content: d.content };
    const frame = JSON.stringify({ type: 'new_message', data: message });
    for (const c of wss.clients) {
      if (c === ws || c.readyState !== 1) continue;
      if (c.bufferedAmount > MAX_BUFFERED_BYTES) c.close(1008, 'slow consumer');
      else c.send(frame);
    }
    ws.send(JSON.stringify({ type: 'ack', data: { client_msg_id: d.client_msg_id, message } }));
  });
  ws.on('error', () => {});
});
wss.on('listening', () => listening(wss.address().port));
wss.on('error', (e) => { process.stderr.write(`ws_peer: ${e.message}\n`); process.exit(1); });
onSignals(() => { for (const c of wss.clients) c.terminate(); wss.close(); });
