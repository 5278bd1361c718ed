// Starts a throwaway `parley serve` on a free loopback port and a temporary SQLite file,
// and gives tests a small REST client for it. The binary comes from PARLEY_BIN.
// PARLEY_TEST_DB=postgres: each server gets a fresh database on the PostgreSQL server of
// PARLEY_TEST_PG_URL instead (named after its data directory, so a restart with opts.dir finds
// it again; dropped by close()), and a --jwt-secret-file in its data directory.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export const BIN = process.env.PARLEY_BIN;
if (!BIN) throw new Error('PARLEY_BIN must name the parley binary');

export const ON_POSTGRES = process.env.PARLEY_TEST_DB === 'postgres';
const PG_URL = process.env.PARLEY_TEST_PG_URL;
if (ON_POSTGRES && !PG_URL) throw new Error('PARLEY_TEST_DB=postgres needs PARLEY_TEST_PG_URL');

// The URL of database `name` on the server of PARLEY_TEST_PG_URL.
// (libpq URIs may have an empty host, e.g. ?host=/socket/dir, which WHATWG URL refuses.)
function pgUrl(name) {
  const m = PG_URL.match(/^([a-z]+:\/\/[^/?]*)(\/[^?]*)?(\?.*)?$/);
  if (!m) throw new Error(`cannot parse PARLEY_TEST_PG_URL ${PG_URL}`);
  return `${m[1]}/${name}${m[3] ?? ''}`;
}
// Runs SQL on the maintenance database of PARLEY_TEST_PG_URL; returns psql's unaligned output.
export function psql(sql) {
  return execFileSync('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

// The --db (and key) flags of a server whose data directory is dir.
function dbArgs(dir, args) {
  if (!ON_POSTGRES) return ['--db', `sqlite:${join(dir, 'parley.db')}`];
  const name = pgDatabase(dir);
  if (psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`) === '0') psql(`CREATE DATABASE ${name}`);
  const out = ['--db', pgUrl(name)];
  if (!args.includes('--jwt-secret-file')) {
    const key = join(dir, 'jwt.key');
    if (!existsSync(key)) writeFileSync(key, randomBytes(24).toString('hex'), { mode: 0o600 });
    out.push('--jwt-secret-file', key);
  }
  return out;
}
// The PostgreSQL database of the servers whose data directory is dir.
export function pgDatabase(dir) {
  return `parley_e2e_${basename(dir).replace(/[^A-Za-z0-9]/g, '_').toLowerCase()}`;
}

// Starts a server. opts.args: extra flags; opts.dir: reuse a data directory (restart tests);
// opts.rateLimit: keep the default rate limit (otherwise it is turned off for speed);
// opts.listen: HOST:PORT (a restart on the port clients reconnect to; default a free port).
export async function startServer(opts = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const args = ['serve', '--listen', opts.listen ?? '127.0.0.1:0', ...dbArgs(dir, opts.args ?? []),
    '--log-level', process.env.PARLEY_TEST_LOG_LEVEL ?? 'warn'];
  if (!opts.rateLimit) args.push('--rate-limit-per-sec', '0');
  args.push(...(opts.args ?? []));
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.PARLEY_TEST_ECHO) process.stderr.write(d); });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s: ${stderr}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${stderr}`)); });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const server = {
    url, dir, proc, exited,
    get stderr() { return stderr; },
    // Stops the server (SIGTERM by default) and waits for it to exit.
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    // Stops the server and removes its data directory.
    async close() {
      await server.stop();
      if (!opts.dir) {
        rmSync(dir, { recursive: true, force: true });
        if (ON_POSTGRES) psql(`DROP DATABASE IF EXISTS ${pgDatabase(dir)} WITH (FORCE)`);
      }
    },
    api: (token) => client(url, token),
  };
  return server;
}

// A small REST client. Every call returns {status, body, headers}; body is parsed JSON or
// null for an empty body.
export function client(baseUrl, token) {
  async function req(method, path, body, extraHeaders = {}) {
    const headers = { ...extraHeaders };
    if (token) headers.authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await fetch(baseUrl + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed = null;
    if (text.length) { try { parsed = JSON.parse(text); } catch { parsed = text; } }
    return { status: res.status, body: parsed, headers: res.headers };
  }
  return {
    get: (p, h) => req('GET', p, undefined, h),
    post: (p, b, h) => req('POST', p, b, h),
    put: (p, b, h) => req('PUT', p, b, h),
    del: (p, h) => req('DELETE', p, undefined, h),
    req,
  };
}

let userCounter = 0;
// Registers a fresh user and returns {user, token, api}.
export async function newUser(server, prefix = 'u') {
  const username = `${prefix}${process.pid % 10000}_${Date.now() % 100000}_${userCounter++}`.toLowerCase().slice(0, 32);
  const r = await client(server.url).post('/api/auth/register', { username, password: 'password123' });
  if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return { user: r.body.user, token: r.body.token, api: client(server.url, r.body.token) };
}
