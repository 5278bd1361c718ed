// What both peers share: the command line (--port N, --host H), the room's state (one seq
// counter) and the validation of a send. Nothing is persisted: a peer keeps only the counter.
export function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: 0 };
  for (let i = 2; i < argv.length; ++i) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? a.split(/=(.*)/s, 2) : [a, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--port') o.port = Number(value());
    else if (flag === '--host') o.host = value();
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: node PEER.mjs [--port N (0: any free port)] [--host 127.0.0.1]\n');
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    process.stderr.write(`bad --port ${o.port}\n`);
    process.exit(2);
  }
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(o.host)) {
    process.stderr.write(`refusing --host ${o.host}: loopback only\n`);
    process.exit(2);
  }
  return o;
}

// A send is {room_id?, content, client_msg_id}: content a string of at most MAX_CONTENT
// characters, client_msg_id 1–64 characters (as Parley's send_message). Returns an error
// code or null.
export const MAX_CONTENT = 4000;
export function checkSend(d) {
  if (!d || typeof d !== 'object') return 'invalid_request';
  if (typeof d.client_msg_id !== 'string' || d.client_msg_id.length < 1 || d.client_msg_id.length > 64)
    return 'invalid_request';
  if (typeof d.content !== 'string' || d.content.length < 1 || d.content.length > MAX_CONTENT)
    return 'invalid_request';
  return null;
}

// Per-socket bound on what waits to be written: a socket with more than this queued is
// closed as a slow consumer (as Parley closes one whose outbound queue is full), so that a
// reader that stops reading cannot grow the peer without bound.
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function listening(port) {
  process.stdout.write(`LISTENING port=${port}\n`);
}

// SIGINT / SIGTERM: exit at once (nothing is kept, so nothing is lost); a peer with a large
// write backlog must not outlive the run that started it.
export function onSignals(close) {
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { try { close(); } finally { process.exit(0); } });
}
