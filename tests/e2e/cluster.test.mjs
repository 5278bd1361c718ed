// scripts/cluster.sh: PostgreSQL, Redis, two instances and nginx come up with one command,
// behave as one server through nginx and directly, and all stop on Ctrl-C.
// Run: cd tests && PARLEY_BIN=../build/test/parley node --test e2e/cluster.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newUser } from './lib/server.mjs';
import { sleep } from './lib/rest-helpers.mjs';
import { open } from './lib/ws-client.mjs';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/cluster.sh');
const accepts = (host) => new Promise((res) => {
  const [h, p] = host.split(':');
  const s = net.connect(Number(p), h);
  s.on('connect', () => { s.destroy(); res(true); });
  s.on('error', () => res(false));
});

test('scripts/cluster.sh: one URL in front of two instances on one database and one bus; Ctrl-C stops it all', { timeout: 120_000 }, async () => {
  const proc = spawn('bash', [SCRIPT, '2'], { env: { ...process.env, PARLEY_BIN: resolve(process.env.PARLEY_BIN) },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  try {
    const deadline = Date.now() + 90_000;
    while (!/instances: .*\n/.test(out)) {
      assert.equal(proc.exitCode, null, `cluster.sh exited early: ${out}\n${err}`);
      assert.ok(Date.now() < deadline, `no 'cluster ready' in 90 s: ${out}\n${err}`);
      await sleep(100);
    }
    const url = out.match(/cluster ready: (http:\/\/\S+)/)[1];
    const instances = out.match(/instances: (\S+) (\S+)/).slice(1);
    const work = out.match(/\(logs in (\S+)\)/)[1];
    const [A, B] = instances.map((h) => ({ url: `http://${h}` }));
    const front = { url };

    const alice = await newUser(front, 'cla');
    const bob = await newUser(front, 'clb');
    const room = await alice.api.post('/api/chatrooms', { name: 'cluster', member_ids: [bob.user.id] });
    assert.equal(room.status, 201);
    // Bob's sidebar on instance A, his chatroom socket through nginx; Alice sends on B.
    const side = await open(A.url, `/ws?token=${bob.token}`);
    const chat = await open(url, `/api/ws?token=${bob.token}&room_id=${room.body.id}`);
    try {
      await sleep(300); // the instances' subscriptions for bob are active
      const sent = await fetch(`${B.url}/api/chatrooms/${room.body.id}/messages`, {
        method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'across the cluster' }) });
      assert.equal(sent.status, 201, 'a token from nginx works on an instance directly');
      const m = await chat.next('new_message');
      assert.equal(m.data.content, 'across the cluster');
      assert.equal(m.data.seq, 1);
      const badge = await side.next((e) => e.type === 'unread_count_update' && e.data.unread_count === 1);
      assert.equal(badge.data.room_id, room.body.id);
      const ready = await Promise.all([url, A.url, B.url].map((u) => fetch(`${u}/readyz`).then((r) => r.status)));
      assert.deepEqual(ready, [200, 200, 200]);
    } finally {
      side.close();
      chat.close();
    }

    proc.kill('SIGINT');
    const r = await Promise.race([exited, sleep(30_000).then(() => null)]);
    assert.ok(r, 'cluster.sh stops within 30 s of Ctrl-C');
    assert.equal(r.code, 0, err);
    for (const h of [...instances, new URL(url).host]) assert.equal(await accepts(h), false, `${h} is closed`);
    assert.equal(existsSync(work), false, 'its files are removed');
  } finally {
    if (proc.exitCode === null) { proc.kill('SIGINT'); await Promise.race([exited, sleep(30_000)]); }
  }
});
