// Sidebar WebSocket clients for the model-based test (e2e/model.test.mjs).
//
// A SidebarSocket is one `GET /ws?token=…` connection: it checks that the first frame is
// `connected` for the right user, hands every later frame to onFrame in arrival order, and
// reports anything unexpected (a non-JSON frame, a close it did not ask for, a socket error)
// through onProblem, so that the test can fail at its next check with a readable message
// instead of an uncaught exception inside an event handler.
import WebSocket from 'ws';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls pred() every intervalMs until it returns true or timeoutMs has passed; returns the
// last result (so the caller can then assert with details).
export async function waitUntil(pred, timeoutMs = 3000, intervalMs = 5) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pred()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

let connCounter = 0;

export class SidebarSocket {
  // baseUrl: the server's http:// URL; user: {id, token, label}; onFrame(conn, type, data);
  // onProblem(conn, text).
  constructor(baseUrl, user, { onFrame, onProblem }) {
    this.url = `${baseUrl.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(user.token)}`;
    this.user = user;
    this.onFrame = onFrame;
    this.onProblem = onProblem;
    this.n = ++connCounter; // a test-side number for messages
    this.ws = null;
    this.connected = null; // the `connected` frame's data
    this.closing = false;
    this.closed = false;
    this.frames = []; // [{type, data}] after `connected`, in arrival order
  }

  // Opens the socket and resolves once `connected` has arrived.
  open(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      let settled = false;
      const fail = (text) => {
        if (!settled) { settled = true; clearTimeout(timer); reject(new Error(`sidebar #${this.n} of ${this.user.label}: ${text}`)); }
        else this.onProblem(this, text);
      };
      const timer = setTimeout(() => fail(`no \`connected\` frame within ${timeoutMs} ms`), timeoutMs);
      ws.on('unexpected-response', (_req, res) => fail(`upgrade refused: HTTP ${res.statusCode}`));
      ws.on('error', (e) => { if (!this.closing) fail(`socket error: ${e.message}`); });
      ws.on('close', (code, reason) => {
        this.closed = true;
        if (!this.closing) fail(`closed by the server: ${code} ${reason}`);
      });
      ws.on('message', (raw, isBinary) => {
        if (isBinary) { fail('binary frame'); return; }
        let f;
        try { f = JSON.parse(raw.toString('utf8')); } catch { fail(`non-JSON frame ${raw.toString('utf8').slice(0, 200)}`); return; }
        if (!f || typeof f.type !== 'string' || typeof f.data !== 'object' || f.data === null) {
          fail(`frame without {type, data}: ${JSON.stringify(f).slice(0, 200)}`);
          return;
        }
        if (this.connected === null) {
          if (f.type !== 'connected') { fail(`first frame is ${f.type}, not connected`); return; }
          if (f.data.user_id !== this.user.id) { fail(`connected.user_id ${f.data.user_id}, expected ${this.user.id}`); return; }
          if (typeof f.data.connection_id !== 'string' || !f.data.connection_id) { fail('connected without connection_id'); return; }
          if ('room_id' in f.data) { fail(`sidebar connected carries room_id ${f.data.room_id}`); return; }
          this.connected = f.data;
          settled = true;
          clearTimeout(timer);
          resolve(this);
          return;
        }
        this.frames.push(f);
        this.onFrame(this, f.type, f.data);
      });
    });
  }

  // Closes the socket (normal closure) and waits until it is closed.
  close(timeoutMs = 3000) {
    this.closing = true;
    if (!this.ws || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.ws.terminate(); resolve(); }, timeoutMs);
      this.ws.once('close', () => { clearTimeout(timer); resolve(); });
      this.ws.close(1000, 'test reconnect');
    });
  }

  terminate() {
    this.closing = true;
    if (this.ws && !this.closed) this.ws.terminate();
  }
}
