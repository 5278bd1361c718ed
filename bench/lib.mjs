// Shared pieces of the Node benchmarks: a throwaway server on a free port and a temporary
// SQLite file, with its RSS and CPU time read from /proc.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// --name VALUE from the command line, or def.
export const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};

// Starts `BIN serve` with rate limits and the WebSocket cooldown off (a benchmark client
// connects many sockets per user at once).
export async function startBenchServer(bin) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${join(dir, 'p.db')}`, '--log-level',
    'warn', '--rate-limit-per-sec', '0', '--ws-cooldown-ms', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    proc.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on (http:\/\/\S+)/); if (m) resolve(m[1]); });
  });
  proc.removeAllListeners('exit');
  return {
    base,
    // Resident set size in KiB.
    rss: () => +readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1],
    // User + system CPU seconds so far.
    cpu: () => {
      const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (+f[11] + +f[12]) / 100;
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.on('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Registers a user; returns {user, token}.
export async function register(base, username) {
  const r = await fetch(`${base}/api/auth/register`, { method: 'POST', body: JSON.stringify({ username, password: 'password123' }) });
  return r.json();
}
