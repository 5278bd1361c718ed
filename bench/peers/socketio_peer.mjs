// A Socket.IO 4 server doing Parley's fan-out job, for bench/compare.sh: one process, one
// room (the default namespace; every connected socket is in it). WebSocket transport only,
// no compression (perMessageDeflate and httpCompression off). A `send_message` event from
// any socket gets the room's next seq and goes to every *other* socket as the event
//   42["new_message",{"type":"new_message","data":{"room_id":"bench","seq":N,"content":"…"}}]
// (socket.broadcast.emit: encoded once, written to each), and the sender gets the event
//   42["ack",{"type":"ack","data":{"client_msg_id":"…","message":{…}}}].
// No persistence (Parley fsyncs every message to SQLite; this keeps nothing), no
// authentication. Engine.IO answers its own pings (interval 25 s, timeout 20 s: the
// defaults). Usage: node socketio_peer.mjs --port 0 (prints LISTENING port=N).
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { parseArgs, checkSend, MAX_BUFFERED_BYTES, listening, onSignals } from './common.mjs';

const opts = parseArgs(process.argv);
const http = createServer((req, res) => { res.writeHead(404).end(); });
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});
let seq = 0;
// Engine.IO keeps packets that wait for the transport in socket.conn.writeBuffer; beyond
// this many the socket is closed as a slow consumer (also the bytes the ws socket holds).
const MAX_QUEUED_PACKETS = 1000;
const slow = (s) =>
  s.conn.writeBuffer.length > MAX_QUEUED_PACKETS || (s.conn.transport?.socket?.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES;

io.on('connection', (socket) => {
  socket.on('send_message', (d) => {
    const bad = checkSend(d);
    if (bad) {
      socket.emit('error_frame', { type: 'error', data: { code: bad, client_msg_id: d?.client_msg_id } });
      return;
    }
    const message = { room_id: 'bench', seq: ++seq, content: d.content };
    socket.broadcast.emit('new_message', { type: 'new_message', data: message });
    socket.emit('ack', { type: 'ack', data: { client_msg_id: d.client_msg_id, message } });
  });
});
// The slow-consumer check runs on a timer rather than per broadcast (a broadcast does not
// visit sockets one by one in user code): every 100 ms over all sockets.
setInterval(() => {
  for (const s of io.of('/').sockets.values()) if (slow(s)) s.disconnect(true);
}, 100).unref();
http.listen(opts.port, opts.host, () => listening(http.address().port));
http.on('error', (e) => { process.stderr.write(`socketio_peer: ${e.message}\n`); process.exit(1); });
onSignals(() => { io.close(); });
