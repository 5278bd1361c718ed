// The process contract: start-up line, flags and PARLEY_* environment variables, start-up
// errors, the generated JWT key file, signals and restarts.
// Run: PARLEY_BIN=build/test/parley node --test tests/e2e/config.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, statSync, openSync, closeSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { BIN, startServer, client } from './lib/server.mjs';
import { sleep, freePort, hmacOk, assertError, assertStatus, assertLike, rawHttp } from './lib/rest-helpers.mjs';
import { rawConnect, buildFrame } from './lib/ws-client.mjs';

const dirs = [];
const children = new Set();
function tmp() {
  const d = mkdtempSync(join(tmpdir(), 'parley-cfg-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// The environment without any PARLEY_* variable, plus `extra`.
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PARLEY_')) env[k] = v;
  return { ...env, ...extra };
}

// Spawns `parley serve ARGS` in `cwd` and returns helpers to wait for the listening line or
// for the exit. Nothing is added to ARGS.
function spawnParley(args, { env = {}, cwd } = {}) {
  const proc = spawn(BIN, ['serve', ...args], { cwd: cwd ?? tmp(), env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const closed = new Promise((resolve) => proc.on('close', resolve));
  return {
    proc,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    // Resolves with the URL once the listening line is out; rejects on exit or timeout.
    listening(ms = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = stdout.match(/listening on (http:\/\/[^\s]+)/);
          if (m) { cleanup(); resolve(m[1]); }
        };
        const onExit = (code) => { cleanup(); reject(new Error(`exited ${code} before listening: ${stderr}`)); };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`no listening line in ${ms} ms: ${stdout} ${stderr}`)); }, ms);
        const cleanup = () => { clearTimeout(timer); proc.stdout.off('data', check); proc.off('exit', onExit); };
        proc.stdout.on('data', check);
        proc.on('exit', onExit);
        check();
      });
    },
    // Resolves {code, signal, ms} at exit (after the output streams closed) or null on timeout.
    async exit(ms = 10000) {
      const t0 = Date.now();
      const r = await Promise.race([exited.then(async (x) => { await Promise.race([closed, sleep(500)]); return x; }), sleep(ms).then(() => null)]);
      return r && { ...r, ms: Date.now() - t0 };
    },
    kill(sig = 'SIGTERM') { if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig); },
  };
}

const portOf = (url) => Number(new URL(url).port);
const canConnect = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});
const keyFileFor = (dir) => {
  const f = join(dir, 'jwt.key');
  writeFileSync(f, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  return f;
};
async function register(url, username, password = 'password123') {
  const r = await client(url).post('/api/auth/register', { username, password });
  assertStatus(r, 201, `register ${username}`);
  return r.body;
}

// ---------------------------------------------------------------------------------------------
describe('start-up line and --listen', () => {
  test('--listen 127.0.0.1:0 prints "listening on http://127.0.0.1:PORT" with the real port', async () => {
    const d = tmp();
    const p = spawnParley(['--listen', '127.0.0.1:0', '--db', `sqlite:${join(d, 'p.db')}`, '--jwt-secret-file', keyFileFor(d)], { cwd: d });
    try {
      const url = await p.listening();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const port = portOf(url);
      assert.ok(port > 0 && port < 65536, `port ${port}`);
      const lines = p.stdout.split('\n').filter((l) => l.includes('listening on'));
      assert.equal(lines.length, 1, 'one listening line');
      const h = await client(url).get('/healthz');
      assertStatus(h, 200);
      assertLike(h.body, { status: 'ok' });
    } finally {
      p.kill();
      await p.exit();
    }
  });

  test('the line is flushed at once when stdout is a file', async () => {
    const d = tmp();
    const out = join(d, 'stdout.txt');
    const fd = openSync(out, 'w');
    const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${join(d, 'p.db')}`, '--jwt-secret-file', keyFileFor(d)],
      { cwd: d, env: cleanEnv(), stdio: ['ignore', fd, 'ignore'] });
    children.add(proc);
    closeSync(fd);
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      let m = null;
      for (let i = 0; i < 200 && !m; i++) {
        await sleep(50);
        m = readFileSync(out, 'utf8').match(/listening on (http:\/\/[^\s]+)/);
      }
      assert.ok(m, `no listening line in the file: ${readFileSync(out, 'utf8')}`);
      assertStatus(await client(m[1]).get('/healthz'), 200);
    } finally {
      proc.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('PARLEY_LISTEN works without the flag, and the flag wins over it', async () => {
    const d = tmp();
    const key = keyFileFor(d);
    const [pa, pb] = [await freePort(), await freePort()];
    const a = spawnParley(['--db', `sqlite:${join(d, 'a.db')}`, '--jwt-secret-file', key], { cwd: d, env: { PARLEY_LISTEN: `127.0.0.1:${pa}` } });
    try {
      const url = await a.listening();
      assert.equal(url, `http://127.0.0.1:${pa}`);
      assertStatus(await client(url).get('/healthz'), 200);
    } finally {
      a.kill();
      assert.equal((await a.exit())?.code, 0);
    }
    const pc = await freePort();
    const b = spawnParley(['--listen', `127.0.0.1:${pb}`, '--db', `sqlite:${join(d, 'b.db')}`, '--jwt-secret-file', key],
      { cwd: d, env: { PARLEY_LISTEN: `127.0.0.1:${pc}` } });
    try {
      const url = await b.listening();
      assert.equal(url, `http://127.0.0.1:${pb}`, 'flag wins');
      assertStatus(await client(url).get('/healthz'), 200);
      assert.equal(await canConnect(pc), false, 'the env port is not served');
    } finally {
      b.kill();
      await b.exit();
    }
  });

  test('PARLEY_DB and PARLEY_JWT_SECRET_FILE are read from the environment', async () => {
    const d = tmp();
    const secret = `${randomBytes(20).toString('hex')}`;
    writeFileSync(join(d, 'env.key'), secret);
    const p = spawnParley(['--listen', '127.0.0.1:0'], {
      cwd: d, env: { PARLEY_DB: `sqlite:${join(d, 'env.db')}`, PARLEY_JWT_SECRET_FILE: join(d, 'env.key') },
    });
    try {
      const url = await p.listening();
      const r = await register(url, `envuser_${randomBytes(3).toString('hex')}`);
      assert.ok(existsSync(join(d, 'env.db')), 'the database is where PARLEY_DB says');
      assert.ok(!existsSync(join(d, 'data')), 'not the default ./data');
      assert.ok(hmacOk(r.token, secret), 'token signed with the PARLEY_JWT_SECRET_FILE key');
    } finally {
      p.kill();
      await p.exit();
    }
  });

  test('--db sqlite::memory: serves', async () => {
    const d = tmp();
    const p = spawnParley(['--listen', '127.0.0.1:0', '--db', 'sqlite::memory:', '--jwt-secret-file', keyFileFor(d)], { cwd: d });
    try {
      const url = await p.listening();
      await register(url, 'memuser');
      assertStatus(await client(url).post('/api/auth/login', { username: 'memuser', password: 'password123' }), 200);
      assertStatus(await client(url).get('/readyz'), 200);
    } finally {
      p.kill();
      assert.equal((await p.exit())?.code, 0);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('bad configuration → exit 2 with one clear line on stderr', () => {
  const cases = [
    ['--listen nonsense', ['--listen', 'nonsense'], {}, /listen/i],
    ['--listen 127.0.0.1:99999', ['--listen', '127.0.0.1:99999'], {}, /listen|port/i],
    ['--log-level loud', ['--log-level', 'loud'], {}, /log/i],
    ['PARLEY_LOG_LEVEL=loud', [], { PARLEY_LOG_LEVEL: 'loud' }, /log/i],
    ['--db mysql://x', ['--db', 'mysql://x'], {}, /db|database|mysql/i],
    ['--ws-cooldown-ms -1', ['--ws-cooldown-ms', '-1'], {}, /cooldown/i],
    ['--ws-cooldown-ms abc', ['--ws-cooldown-ms', 'abc'], {}, /cooldown/i],
    ['--jwt-secret-file of 31 bytes', ['--jwt-secret-file', 'short.key'], {}, /jwt|secret|key|32/i],
    ['--jwt-secret-file of 31 bytes plus a newline', ['--jwt-secret-file', 'short-nl.key'], {}, /jwt|secret|key|32/i],
    ['--jwt-secret-file that does not exist', ['--jwt-secret-file', 'missing.key'], {}, /jwt|secret|key|missing/i],
    ['--http-max-body-bytes above the 1 MiB of the contract', ['--http-max-body-bytes', '1048577'], {}, /http-max-body-bytes/],
    ['--http-max-body-bytes 1023', ['--http-max-body-bytes', '1023'], {}, /http-max-body-bytes/],
    ['PARLEY_HTTP_MAX_HEADER_BYTES=lots', [], { PARLEY_HTTP_MAX_HEADER_BYTES: 'lots' }, /http-max-header-bytes/],
    ['--http-max-header-bytes 262145', ['--http-max-header-bytes', '262145'], {}, /http-max-header-bytes/],
    ['--http-idle-timeout-ms 0', ['--http-idle-timeout-ms', '0'], {}, /http-idle-timeout-ms/],
    ['--http-request-timeout-ms 3600001', ['--http-request-timeout-ms', '3600001'], {}, /http-request-timeout-ms/],
    ['--ws-max-frame-bytes above the 64 KiB of the contract', ['--ws-max-frame-bytes', '65537'], {}, /ws-max-frame-bytes/],
    ['PARLEY_WS_MAX_FRAME_BYTES=1000', [], { PARLEY_WS_MAX_FRAME_BYTES: '1000' }, /ws-max-frame-bytes/],
    ['--ws-handshake-timeout-ms 99', ['--ws-handshake-timeout-ms', '99'], {}, /ws-handshake-timeout-ms/],
    ['--http-header-timeout-ms 99', ['--http-header-timeout-ms', '99'], {}, /http-header-timeout-ms/],
    ['--ws-write-delay-ms 1001', ['--ws-write-delay-ms', '1001'], {}, /ws-write-delay-ms/],
    ['PARLEY_WS_WRITE_DELAY_MS=-1', [], { PARLEY_WS_WRITE_DELAY_MS: '-1' }, /ws-write-delay-ms/],
    ['--trusted-proxy that is not a CIDR', ['--trusted-proxy', '10.0.0.0/33'], {}, /trusted-proxy/],
    ['PARLEY_TRUSTED_PROXY with a host name', [], { PARLEY_TRUSTED_PROXY: 'proxy.example' }, /trusted-proxy/],
    ['--max-connections-per-ip -1', ['--max-connections-per-ip', '-1'], {}, /max-connections-per-ip/],
    ['--login-failures-per-user 10001', ['--login-failures-per-user', '10001'], {}, /login-failures-per-user/],
    ['--login-failures-per-ip abc', ['--login-failures-per-ip', 'abc'], {}, /login-failures-per-ip/],
    ['--db postgres:// without --jwt-secret-file', ['--db', 'postgres://parley:parley@127.0.0.1:1/parley', '--no-jwt'], {}, /jwt|secret|postgres/i],
  ];
  for (const [what, args, env, mention] of cases) {
    test(what, async () => {
      const d = tmp();
      writeFileSync(join(d, 'short.key'), 'x'.repeat(31));
      writeFileSync(join(d, 'short-nl.key'), `${'x'.repeat(31)}\n`);
      writeFileSync(join(d, 'good.key'), 'g'.repeat(40));
      const full = [...args];
      if (!full.includes('--listen') && !env.PARLEY_LISTEN) full.push('--listen', '127.0.0.1:0');
      if (!full.includes('--db')) full.push('--db', `sqlite:${join(d, 'p.db')}`);
      const noJwt = full.indexOf('--no-jwt');
      if (noJwt >= 0) full.splice(noJwt, 1);
      else if (!full.includes('--jwt-secret-file')) full.push('--jwt-secret-file', join(d, 'good.key'));
      const p = spawnParley(full, { cwd: d, env });
      const r = await p.exit(10000);
      if (!r) p.kill('SIGKILL');
      assert.ok(r, `still running after 10 s; stdout: ${p.stdout} stderr: ${p.stderr}`);
      assert.equal(r.code, 2, `exit code (stderr: ${p.stderr.trim()})`);
      assert.doesNotMatch(p.stdout, /listening on/, 'never listened');
      const lines = p.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
      assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${p.stderr}`);
      assert.ok(lines[0].length >= 10, 'a clear line');
      assert.match(lines[0], mention, `the line names the problem: ${lines[0]}`);
    });
  }

  test('a key of exactly 32 bytes plus a trailing newline is accepted', async () => {
    const d = tmp();
    const key = 'k'.repeat(32);
    writeFileSync(join(d, 'k32.key'), `${key}\n`);
    const p = spawnParley(['--listen', '127.0.0.1:0', '--db', `sqlite:${join(d, 'p.db')}`, '--jwt-secret-file', join(d, 'k32.key')], { cwd: d });
    try {
      const url = await p.listening();
      const r = await register(url, 'k32user');
      assert.ok(hmacOk(r.token, key), 'signed with the 32 bytes, without the newline');
    } finally {
      p.kill();
      await p.exit();
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('HTTP and WebSocket limits are flags', () => {
  // Sends `bytes` on a fresh connection; resolves with the ms until the server closes it
  // (null if it is still open after `ms`).
  const closedAfter = (url, bytes, ms) => new Promise((resolve) => {
    const sock = net.connect(portOf(url), '127.0.0.1');
    const t0 = Date.now();
    const timer = setTimeout(() => { sock.destroy(); resolve(null); }, ms);
    sock.on('connect', () => { if (bytes) sock.write(bytes); });
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(Date.now() - t0); });
  });
  const post = (path, body, token) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
    + `${token ? `Authorization: Bearer ${token}\r\n` : ''}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const padded = (obj, bytes) => {
    const s = JSON.stringify(obj);
    return s + ' '.repeat(bytes - Buffer.byteLength(s));
  };

  test('--http-max-body-bytes, --http-max-header-bytes (and PARLEY_HTTP_MAX_BODY_BYTES)', async () => {
    for (const [args, env] of [[['--http-max-body-bytes', '2048'], {}], [[], { PARLEY_HTTP_MAX_BODY_BYTES: '2048' }]]) {
      const s = await startServer({ args: [...args, '--http-max-header-bytes', '2048'], env });
      try {
        const u = await register(s.url, 'limits');
        const fits = await rawHttp(s.url, post('/api/auth/login', padded({ username: 'limits', password: 'password123' }, 2048)));
        assert.equal(fits.status, 200, `a body of exactly 2048 bytes: ${fits.text.slice(0, 200)}`);
        const big = await rawHttp(s.url, post('/api/auth/login', padded({ username: 'limits', password: 'password123' }, 2049)));
        assert.equal(big.status, 413, `2049 bytes: ${big.text.slice(0, 200)}`);
        assert.match(big.text, /"payload_too_large"/);
        const head = await rawHttp(s.url, `GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\nX-Pad: ${'p'.repeat(2100)}\r\n\r\n`);
        assert.equal(head.status, 431, `headers over 2048 bytes: ${head.text.slice(0, 200)}`);
        const me = await rawHttp(s.url, `GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\nConnection: close\r\n\r\n`);
        assert.equal(me.status, 200, 'small headers pass');
      } finally {
        await s.close();
      }
    }
  });

  test('--http-idle-timeout-ms and --http-request-timeout-ms close slow connections', async () => {
    const s = await startServer({ args: ['--http-idle-timeout-ms', '300', '--http-request-timeout-ms', '400'] });
    try {
      const idle = await closedAfter(s.url, null, 5000);
      assert.ok(idle !== null && idle >= 250 && idle < 3000, `an idle connection closed after ${idle} ms`);
      const partial = await closedAfter(s.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 5000);
      assert.ok(partial !== null && partial >= 350 && partial < 3000, `an unfinished request cut after ${partial} ms`);
      assertStatus(await client(s.url).get('/healthz'), 200, 'a prompt request is served');
    } finally {
      await s.close();
    }
  });

  test('--ws-max-frame-bytes: a larger message closes 1009; --ws-handshake-timeout-ms is accepted', async () => {
    const s = await startServer({ args: ['--ws-max-frame-bytes', '1024', '--ws-handshake-timeout-ms', '2000'] });
    try {
      const u = await register(s.url, 'frames');
      const c = await rawConnect(s.url, `/ws?token=${u.token}`);
      try {
        assert.equal(c.status, 101, c.headText);
        c.write(buildFrame(1, JSON.stringify({ type: 'ping' }).padEnd(1024, ' ')));
        await sleep(200);
        assert.equal(c.ended, false, 'a message of exactly 1024 bytes is read');
        c.write(buildFrame(1, Buffer.alloc(1025, 0x61)));
        const r = await c.waitClose(5000);
        assert.equal(r.code, 1009, `close after 1025 bytes: ${JSON.stringify(r)}`);
      } finally {
        c.sock.destroy();
      }
    } finally {
      await s.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('generated JWT key, restarts and signals', () => {
  test('without --jwt-secret-file a key file (mode 0600) is created next to the SQLite file and reused on restart', async () => {
    const d = tmp();
    const dbDir = join(d, 'db');
    const cwd = join(d, 'cwd');
    mkdirSync(dbDir);
    mkdirSync(cwd);
    const args = ['--listen', '127.0.0.1:0', '--db', `sqlite:${join(dbDir, 'parley.db')}`];
    const p1 = spawnParley(args, { cwd });
    let token; let user; let keyName; let keyBytes; let keyMtime;
    try {
      const url = await p1.listening();
      // (and the attachments' directory, made next to the database at start-up)
      const extra = readdirSync(dbDir).filter((f) => !/^(parley\.db(-wal|-shm|-journal)?|uploads)$/.test(f));
      assert.equal(extra.length, 1, `one key file next to the database, found: ${readdirSync(dbDir)}`);
      keyName = extra[0];
      const st = statSync(join(dbDir, keyName));
      assert.ok(st.isFile());
      assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
      keyBytes = readFileSync(join(dbDir, keyName));
      keyMtime = st.mtimeMs;
      const key = keyBytes.at(-1) === 0x0a ? keyBytes.subarray(0, -1) : keyBytes;
      assert.ok(key.length >= 32, `key of ${key.length} bytes`);
      assert.deepEqual(readdirSync(cwd), [], 'nothing written to the working directory');
      const r = await register(url, 'keeper');
      token = r.token;
      user = r.user;
      assert.ok(hmacOk(token, key), 'tokens are signed with the generated key');
    } finally {
      p1.kill();
      assert.equal((await p1.exit())?.code, 0);
    }
    const p2 = spawnParley(args, { cwd });
    try {
      const url = await p2.listening();
      const after = readFileSync(join(dbDir, keyName));
      assert.ok(after.equals(keyBytes), 'key file unchanged');
      assert.equal(statSync(join(dbDir, keyName)).mtimeMs, keyMtime, 'key file not rewritten');
      assert.equal(readdirSync(dbDir).filter((f) => !/^(parley\.db(-wal|-shm|-journal)?|uploads)$/.test(f)).length, 1);
      const me = await client(url, token).get('/api/me');
      assertStatus(me, 200, 'token from before the restart');
      assertLike(me.body, user);
    } finally {
      p2.kill();
      await p2.exit();
    }
  });

  for (const sig of ['SIGTERM', 'SIGINT']) {
    test(`${sig} → exit 0 within 10 s`, async () => {
      const s = await startServer();
      const u = await client(s.url).post('/api/auth/register', { username: `sig${sig.toLowerCase()}`, password: 'password123' });
      assertStatus(u, 201);
      const t0 = Date.now();
      const r = await Promise.race([s.stop(sig), sleep(10000).then(() => null)]);
      if (!r) s.proc.kill('SIGKILL');
      assert.ok(r, `did not exit within 10 s of ${sig}`);
      assert.deepEqual(r, { code: 0, signal: null });
      assert.ok(Date.now() - t0 < 10000);
      await s.close();
    });
  }

  test('SIGTERM right after the listening line → exit 0 (signal handling is in place before the line), 10 times', async () => {
    const results = [];
    for (let i = 0; i < 10; i++) {
      const s = await startServer();
      s.proc.kill('SIGTERM');
      const r = await Promise.race([s.exited, sleep(10000).then(() => null)]);
      if (!r) s.proc.kill('SIGKILL');
      results.push(r);
      await s.close();
    }
    const bad = results.filter((r) => !r || r.code !== 0 || r.signal !== null);
    assert.equal(bad.length, 0, `${bad.length} of 10 did not exit 0: ${JSON.stringify(bad)}`);
  });

  test('SIGTERM while a request is being handled: it is answered, then exit 0', async () => {
    const s = await startServer();
    try {
      // A register runs Argon2id (tens of ms): send it whole, then SIGTERM while it runs.
      const p = client(s.url).post('/api/auth/register', { username: 'busy_shutdown', password: 'password123' });
      await sleep(15);
      s.proc.kill('SIGTERM');
      const r = await p;
      assertStatus(r, 201, 'in-flight register answered');
      const x = await Promise.race([s.exited, sleep(10000).then(() => null)]);
      assert.deepEqual(x, { code: 0, signal: null });
      const s2 = await startServer({ dir: s.dir });
      try {
        assertStatus(await client(s2.url).post('/api/auth/login', { username: 'busy_shutdown', password: 'password123' }), 200, 'stored');
      } finally {
        await s2.stop();
      }
    } finally {
      await s.stop();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  test('SIGTERM while a request body is still arriving: the request is finished, then exit 0', async () => {
    const s = await startServer();
    try {
      const u = (await client(s.url).post('/api/auth/register', { username: 'inflight', password: 'password123' })).body;
      const room = (await client(s.url, u.token).post('/api/chatrooms', { name: 'r' })).body;
      const body = JSON.stringify({ content: 'sent during shutdown' });
      const { port } = new URL(s.url);
      const sock = net.connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => sock.on('connect', resolve));
      let resp = '';
      sock.on('data', (d) => { resp += d; });
      const ended = new Promise((resolve) => { sock.on('close', resolve); sock.on('error', resolve); });
      sock.write(`POST /api/chatrooms/${room.id}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${u.token}\r\n`
        + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
      await sleep(100);
      s.proc.kill('SIGTERM');
      await sleep(150);
      sock.write(body.slice(10));
      await Promise.race([ended, sleep(5000)]);
      sock.destroy();
      assert.match(resp, /^HTTP\/1\.1 201/, `response: ${resp.slice(0, 300)}`);
      assert.match(resp, /sent during shutdown/);
      const r = await Promise.race([s.exited, sleep(10000).then(() => null)]);
      assert.ok(r, 'exited within 10 s');
      assert.equal(r.code, 0);
      // The message was stored.
      const s2 = await startServer({ dir: s.dir });
      try {
        const h = await client(s2.url, (await client(s2.url).post('/api/auth/login', { username: 'inflight', password: 'password123' })).body.token)
          .get(`/api/chatrooms/${room.id}/messages`);
        assertStatus(h, 200);
        assert.deepEqual(h.body.messages.map((m) => m.content), ['sent during shutdown']);
      } finally {
        await s2.stop();
      }
    } finally {
      await s.stop();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  test('data survives a clean restart (users, rooms, messages, seq, read state, idempotency)', async () => {
    const s1 = await startServer();
    const dir = s1.dir;
    let a; let b; let room; let msgs;
    try {
      a = (await client(s1.url).post('/api/auth/register', { username: 'persist_a', password: 'password-a' })).body;
      b = (await client(s1.url).post('/api/auth/register', { username: 'persist_b', password: 'password-b' })).body;
      const A = client(s1.url, a.token);
      const B = client(s1.url, b.token);
      room = (await A.post('/api/chatrooms', { name: 'durable', member_ids: [b.user.id] })).body;
      msgs = [];
      for (const [i, c] of ['one', 'two', 'three'].entries()) {
        const r = await A.post(`/api/chatrooms/${room.id}/messages`, { content: c, client_msg_id: `p-${i}` });
        assertStatus(r, 201);
        msgs.push(r.body);
      }
      assertStatus(await B.post(`/api/messages/${msgs[0].id}/read`), 200);
    } finally {
      assert.equal((await s1.stop()).code, 0);
    }
    const s2 = await startServer({ dir });
    try {
      const la = await client(s2.url).post('/api/auth/login', { username: 'persist_a', password: 'password-a' });
      assertStatus(la, 200, 'login after restart');
      assertLike(la.body.user, a.user);
      const lb = await client(s2.url).post('/api/auth/login', { username: 'persist_b', password: 'password-b' });
      assertStatus(lb, 200);
      assertError(await client(s2.url).post('/api/auth/login', { username: 'persist_b', password: 'password-a' }), 401, 'invalid_credentials');
      const A = client(s2.url, la.body.token);
      const B = client(s2.url, lb.body.token);
      const g = await B.get(`/api/chatrooms/${room.id}`);
      assertStatus(g, 200);
      assertLike(g.body, { id: room.id, name: 'durable', type: 'group', created_by: a.user.id, last_seq: 3, unread_count: 2, last_message: msgs[2] });
      const h = await B.get(`/api/chatrooms/${room.id}/messages`);
      assertLike(h.body, { messages: msgs, has_more: false });
      const u = await B.get('/api/messages/unread-counts');
      assertLike(u.body, { unread_counts: { [room.id]: 2 }, total: 2 });
      const f = await B.get(`/api/chatrooms/${room.id}/first-unread`);
      assertLike(f.body, { message: msgs[1], unread_count: 2 });
      const again = await A.post(`/api/chatrooms/${room.id}/messages`, { content: 'three', client_msg_id: 'p-2' });
      assertStatus(again, 200, 'client_msg_id retry after restart');
      assertLike(again.body, msgs[2]);
      const next = await A.post(`/api/chatrooms/${room.id}/messages`, { content: 'four' });
      assertStatus(next, 201);
      assert.equal(next.body.seq, 4);
      assertError(await client(s2.url).post('/api/auth/register', { username: 'persist_a', password: 'password123' }), 409, 'username_taken');
    } finally {
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
