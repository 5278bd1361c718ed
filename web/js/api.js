// REST client of the Parley API (docs/openapi.yaml): JSON in and out, Bearer token, errors
// as ApiError {status, code, message}.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_error';
    this.retryAfter = retryAfter;
  }
}

export class Api {
  constructor(token = null) {
    this.token = token;
    this.onUnauthorized = () => {};
  }

  async request(method, path, body, { retries = 2 } = {}) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        // The server is restarting or the network is gone: retry a few times, then give up.
        if (attempt < retries) { await sleep(400 * (attempt + 1)); continue; }
        throw new ApiError(0, 'network', 'the server cannot be reached');
      }
      if (res.status === 204) return null;
      let data = null;
      try { data = await res.json(); } catch { data = null; }
      if (res.ok) return data;
      const retryAfter = Number(res.headers.get('Retry-After')) || 0;
      // 503 / 429 say when to come back: idempotent requests (reads included) are retried.
      const idempotent = method !== 'POST' || path.endsWith('/read');
      if ((res.status === 503 || res.status === 429) && idempotent && attempt < retries) {
        await sleep(Math.min(5, retryAfter || 1) * 1000);
        continue;
      }
      const err = data && data.error ? data.error : {};
      if (res.status === 401 && this.token) this.onUnauthorized();
      throw new ApiError(res.status, err.code, err.message, retryAfter);
    }
  }

  get(path) { return this.request('GET', path); }
  post(path, body = {}) { return this.request('POST', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
  del(path) { return this.request('DELETE', path); }

  register(username, password) { return this.post('/api/auth/register', { username, password }); }
  login(username, password) { return this.post('/api/auth/login', { username, password }); }
  logout() { return this.post('/api/auth/logout'); }
  rooms() { return this.get('/api/chatrooms'); }
  room(id) { return this.get(`/api/chatrooms/${encodeURIComponent(id)}`); }
  createRoom(body) { return this.post('/api/chatrooms', body); }
  searchUsers(prefix) { return this.get(`/api/users?query=${encodeURIComponent(prefix)}`); }
  history(room, { before, after, limit = 50 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) q.set('before_seq', String(before));
    if (after !== undefined) q.set('after_seq', String(after));
    return this.get(`/api/chatrooms/${encodeURIComponent(room)}/messages?${q}`);
  }
  firstUnread(room) { return this.get(`/api/chatrooms/${encodeURIComponent(room)}/first-unread`); }
  markRead(messageId) { return this.post(`/api/messages/${encodeURIComponent(messageId)}/read`); }
  readByWho(messageId) { return this.get(`/api/messages/${encodeURIComponent(messageId)}/read-by-who`); }
  presence(userId) { return this.get(`/api/users/${encodeURIComponent(userId)}/presence`); }
  react(messageId, emoji, on) {
    const p = `/api/messages/${encodeURIComponent(messageId)}/reactions/${encodeURIComponent(emoji)}`;
    return on ? this.put(p) : this.del(p);
  }
  createUpload(file) {
    return this.post('/api/uploads', {
      filename: file.name, content_type: file.type || 'application/octet-stream', size: file.size,
    });
  }
  // The raw bytes, streamed by the browser; onProgress(sent, total) from the upload itself
  // (the server's upload_progress events say what it has received).
  uploadBytes(id, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', `/api/uploads/${encodeURIComponent(id)}`);
      xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { data = null; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(new ApiError(xhr.status, data?.error?.code, data?.error?.message));
      };
      xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was interrupted'));
      xhr.send(file);
    });
  }
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
