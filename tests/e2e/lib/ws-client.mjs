// Small WebSocket helpers for the end-to-end tests: a JSON event client on top of `ws`, a
// plain-HTTP upgrade probe (to read refusals before the upgrade) and a raw RFC 6455 client
// with hand-built frames.
import http from 'node:http';
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import WebSocket from 'ws';

export const wsUrl = (baseUrl, path) => baseUrl.replace(/^http/, 'ws') + path;

// An event filter: null (any event), a type name, or a predicate on the whole event.
const matches = (type, e) => type === null || (typeof type === 'function' ? type(e) : e.type === type);
const filterName = (type) => (type === null ? 'any' : typeof type === 'function' ? (type.label ?? 'matching') : type);

// A predicate for next()/take()/drain()/expectNone() with a readable name in failures.
export function where(label, pred) {
  const f = (e) => pred(e);
  f.label = label;
  return f;
}

// CONTRACT.md "Multi-device": a sender's other connections get its message with echo:true.
export const isEcho = (e) => e.type === 'new_message' && e.data?.echo === true;
// A new_message that is not an echo (what every other member gets).
export const plainNewMessage = where('new_message (not an echo)', (e) => e.type === 'new_message' && e.data?.echo !== true);
export const echoNewMessage = where('new_message (echo)', isEcho);

// A connected client. Every text frame is parsed and kept in `all` (arrival order) and in a
// queue from which next()/take() remove events.
export class WsClient {
  constructor(ws) {
    this.ws = ws;
    this.all = [];
    this.queue = [];
    this.raw = []; // every frame as received: {binary, text}
    this.pings = 0;
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this._wake();
      });
    });
    ws.on('error', (e) => { this.error = e; });
    ws.on('ping', () => { this.pings++; });
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      this.raw.push({ binary: isBinary, text });
      let ev;
      try { ev = JSON.parse(text); } catch { ev = { type: '__unparsable__', text }; }
      this.all.push(ev);
      this.queue.push(ev);
      this._wake();
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _changed(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  // Waits for the next event of `type` (any type when null; a predicate on the event when a
  // function) and removes it (and only it) from the queue.
  async next(type = null, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((e) => matches(type, e));
      if (i >= 0) return this.queue.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || (this.closeInfo && this.queue.length === 0 && type === null)) break;
      if (this.closeInfo) {
        // Closed: nothing more will arrive.
        break;
      }
      await this._changed(left);
    }
    const seen = this.queue.map((e) => e.type).join(',');
    throw new Error(`no '${filterName(type)}' event within ${timeoutMs} ms (queued: [${seen}]; closed: ${JSON.stringify(this.closeInfo)})`);
  }

  // Waits for n events of a type (removing them).
  async take(type, n, timeoutMs = 10000) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const left = deadline - Date.now();
      try {
        out.push(await this.next(type, Math.max(1, left)));
      } catch (e) {
        throw new Error(`got ${out.length} of ${n} '${filterName(type)}' events: ${e.message}`);
      }
    }
    return out;
  }

  // Waits `ms` and asserts that no event of `type` arrived in the queue; returns nothing,
  // throws otherwise.
  async expectNone(type, ms = 300) {
    await new Promise((r) => setTimeout(r, ms));
    const hit = this.queue.find((e) => matches(type, e));
    if (hit) throw new Error(`unexpected '${hit.type}' event: ${JSON.stringify(hit)}`);
  }

  // Removes and returns every queued event of a type (all types when null).
  drain(type = null) {
    const out = this.queue.filter((e) => matches(type, e));
    this.queue = this.queue.filter((e) => !matches(type, e));
    return out;
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  // Sends `send_message` with `data` as given (CONTRACT.md "Sending over WebSocket").
  sendMessage(data) { this.send({ type: 'send_message', data }); }

  // Waits for the answer to a send_message with this client_msg_id: the `ack` or `error` that
  // carries it, or else an `error` without any client_msg_id (what a server answers to a frame
  // it cannot tie to a send, e.g. an unknown type), so that a wrong answer fails at once with
  // the frame in the message instead of as a time-out.
  reply(cmid, timeoutMs = 5000) {
    return this.next(where(`ack/error for client_msg_id ${JSON.stringify(cmid)}`, (e) => (
      (e.type === 'ack' || e.type === 'error') && e.data && typeof e.data === 'object' &&
      (e.data.client_msg_id === cmid || (e.type === 'error' && !('client_msg_id' in e.data))))), timeoutMs);
  }

  // sendMessage + reply.
  async request(data, timeoutMs = 5000) {
    this.sendMessage(data);
    return this.reply(data.client_msg_id, timeoutMs);
  }

  async close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try { this.ws.close(code); } catch { /* ignore */ }
    }
    const t = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

// Opens a WebSocket; resolves with a WsClient once open, or rejects with an error that
// carries `status` and `headers` when the server answered with plain HTTP.
export function connect(baseUrl, path, { headers = {}, origin, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const opts = { headers, handshakeTimeout: timeoutMs, perMessageDeflate: false };
    if (origin !== undefined) opts.origin = origin;
    const ws = new WebSocket(wsUrl(baseUrl, path), opts);
    const client = new WsClient(ws);
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const err = new Error(`upgrade refused: ${res.statusCode} ${body}`);
        err.status = res.statusCode;
        err.headers = res.headers;
        err.body = body;
        ws.terminate();
        reject(err);
      });
    });
    ws.once('error', (e) => reject(e));
  });
}

// Connects and waits for the `connected` event; returns the client with `connected` set.
export async function open(baseUrl, path, opts = {}) {
  const c = await connect(baseUrl, path, opts);
  c.connected = await c.next(null, 5000);
  if (c.connected.type !== 'connected') throw new Error(`first frame is not 'connected': ${JSON.stringify(c.connected)}`);
  return c;
}

// Sends a WebSocket upgrade request over plain HTTP and reports what came back, without
// speaking WebSocket: {status, headers, body}. A 101 answer's socket is closed at once.
export function probeUpgrade(baseUrl, path, headers = {}) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: hostname, port: Number(port), path, method: 'GET',
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.setTimeout(5000, () => req.destroy(new Error('probe timeout')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        let parsed = body;
        try { parsed = JSON.parse(body); } catch { /* keep text */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// ---- raw RFC 6455 ----

// Builds one client frame. opts: fin (default true), rsv (bits 0..7 << 4 handled: pass 0x40
// for RSV1, 0x20 RSV2, 0x10 RSV3), mask (default true).
export function buildFrame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true } = {}) {
  payload = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = (fin ? 0x80 : 0) | rsv | opcode;
  if (!mask) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([header, key, masked]);
}

// Parses server frames from a buffer; returns {frames, rest}.
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length - p < 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length - p < 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key;
    if (masked) {
      if (buf.length - p < 4) break;
      key = buf.subarray(p, p + 4);
      p += 4;
    }
    if (buf.length - p < len) break;
    let payload = Buffer.from(buf.subarray(p, p + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, payload });
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

// A raw client: performs the handshake by hand and then collects the server's frames.
// Resolves with {sock, status, headers, frames, closedBy, waitClose(ms), write(buf), readLoop}
// once the 101 (or another answer) has arrived. opts.read=false: never read after the
// handshake (the socket is paused).
export function rawConnect(baseUrl, path, { headers = {}, read = true } = {}) {
  const { hostname, port } = new URL(baseUrl);
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let buf = Buffer.alloc(0);
    let handshaken = false;
    const c = {
      sock, frames: [], status: null, headers: {}, ended: false, key,
      endedAt: null,
      write: (b) => sock.write(b),
    };
    const waiters = [];
    const wake = () => { while (waiters.length) waiters.shift()(); };
    c.changed = (ms) => new Promise((r) => { const t = setTimeout(r, ms); waiters.push(() => { clearTimeout(t); r(); }); });
    // Waits for a close frame or the end of the TCP connection. Returns
    // {code, reason, ended} (code null when no close frame came).
    c.waitClose = async (ms = 5000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const cf = c.frames.find((f) => f.opcode === 8);
        if (cf || c.ended) {
          const code = cf && cf.payload.length >= 2 ? cf.payload.readUInt16BE(0) : null;
          const reason = cf && cf.payload.length > 2 ? cf.payload.subarray(2).toString() : '';
          return { code, reason, ended: c.ended, closeFrame: !!cf };
        }
        const left = deadline - Date.now();
        if (left <= 0) return { code: null, reason: '', ended: false, timeout: true };
        await c.changed(left);
      }
    };
    c.texts = () => c.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!handshaken) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i).toString('latin1');
        buf = buf.subarray(i + 4);
        handshaken = true;
        const lines = head.split('\r\n');
        c.status = Number(lines[0].split(' ')[1]);
        for (const l of lines.slice(1)) {
          const k = l.indexOf(':');
          c.headers[l.slice(0, k).trim().toLowerCase()] = l.slice(k + 1).trim();
        }
        c.headText = head;
        if (!read) sock.pause();
        resolve(c);
      }
      const { frames, rest } = parseFrames(buf);
      buf = Buffer.from(rest);
      c.frames.push(...frames);
      if (frames.length) wake();
    });
    const end = () => { if (!c.ended) { c.ended = true; c.endedAt = Date.now(); wake(); } };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', (e) => { c.error = e; end(); if (!handshaken) reject(e); });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\n` +
      `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n${extra}\r\n`);
  });
}

export const expectedAccept = (key) => createHash('sha1')
  .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

// Waits until each socket has its catch-up (e.g. the sidebar's snapshot) and forgets it: a
// heartbeat is answered after everything written before it.
export async function settle(...socks) {
  for (const x of socks) {
    x.send({ type: 'heartbeat', data: { timestamp: 1 } });
    await x.next('heartbeat_ack');
    x.drain();
  }
}
