// A WebSocket that reconnects by itself: exponential backoff with full jitter (0.6 s .. 15 s;
// never below the server's 500 ms connect cooldown), a fresh URL per attempt (so a chatroom
// resumes with the newest after_seq), application-level heartbeats so a dead link is noticed.

const MIN_DELAY_MS = 600;
const MAX_DELAY_MS = 15000;
const HEARTBEAT_MS = 20000;

export class Socket {
  // url(): the URL to connect to now. onEvent(type, data), onState(open: bool).
  // onFatal(code, reason): the server closed for good (token revoked, not a member).
  constructor(url, { onEvent, onState = () => {}, onFatal = () => {} }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onFatal = onFatal;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.open = false;
    this.timer = null;
    this.heartbeat = null;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { return; }
      if (!f || typeof f.type !== 'string') return;
      if (f.type === 'connected') {
        this.attempt = 0;
        this.setOpen(true);
      }
      this.onEvent(f.type, f.data || {});
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      this.setOpen(false);
      // 1008: policy (token revoked, not a member): reconnecting would be refused again.
      if (e.code === 1008 && e.reason !== 'slow consumer') {
        this.stopped = true;
        this.onFatal(e.code, e.reason);
        return;
      }
      this.retry();
    };
    ws.onerror = () => {};
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.send({ type: 'heartbeat', data: { timestamp: Date.now() } }), HEARTBEAT_MS);
  }

  retry() {
    if (this.stopped) return;
    const cap = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    const delay = MIN_DELAY_MS + Math.random() * (cap - MIN_DELAY_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  setOpen(open) {
    if (this.open === open) return;
    this.open = open;
    this.onState(open);
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.setOpen(false);
  }
}
