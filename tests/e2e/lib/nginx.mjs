// Starts Debian's nginx with the project's deploy/nginx/parley.conf in front of given Parley
// instances, on a free loopback port, with every file in a temporary directory.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './rest-helpers.mjs';

const SITE = join(dirname(fileURLToPath(import.meta.url)), '../../../deploy/nginx/parley.conf');

// The site file with its placeholders filled: the upstream servers and the listen address.
export function renderSite(upstreams, listen) {
  const site = readFileSync(SITE, 'utf8');
  const servers = upstreams.map((u) => `    server ${new URL(u).host} max_fails=3 fail_timeout=5s;`).join('\n');
  return site
    .replace(/# PARLEY_UPSTREAMS\n(\s*server [^\n]*\n)+/, `# PARLEY_UPSTREAMS\n${servers}\n`)
    .replace('listen PARLEY_LISTEN;', `listen ${listen};`);
}

export async function startNginx(upstreams) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-nginx-'));
  chmodSync(dir, 0o777); // workers run as nginx's unprivileged user
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { mode: 0o777 });
  const port = await freePort();
  writeFileSync(join(dir, 'parley.conf'), renderSite(upstreams, `127.0.0.1:${port}`));
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/parley.conf;
}
`);
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
