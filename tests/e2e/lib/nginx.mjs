// Starts Debian's nginx with the project's deploy/nginx/parley.conf (through
// scripts/nginx-conf.sh) in front of given Parley instances, on a free loopback port, with
// every file in a temporary directory.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './rest-helpers.mjs';

const CONF = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/nginx-conf.sh');

export async function startNginx(upstreams) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-nginx-'));
  const port = await freePort();
  // The same configuration scripts/cluster.sh runs: deploy/nginx/parley.conf, filled in.
  execFileSync('bash', [CONF, dir, `127.0.0.1:${port}`, ...upstreams.map((u) => new URL(u).host)]);
  const proc = spawn('nginx', ['-p', dir, '-e', `${dir}/error.log`, '-c', join(dir, 'nginx.conf')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}: ${stderr}`);
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`nginx did not listen in 10 s: ${stderr}`); }
    await sleep(50);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    async close() {
      if (proc.exitCode === null) proc.kill('SIGQUIT');
      await Promise.race([exited, sleep(5000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
