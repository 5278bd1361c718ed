// Two instances on one PostgreSQL database (CONTRACT.md "More than one instance"; run with
// PARLEY_TEST_DB=postgres, as CTest's e2e_pg_multi_instance does — skipped otherwise):
//  1. started together on an empty database, both come up (one migrates, the other waits);
//  2. a user registered through one logs in through the other, and a token of one is good on
//     the other (one key, one database id);
//  3. sends into one room through both at once, each client_msg_id sent through both: the
//     room's seqs are 1..N without gap or repeat, each client_msg_id made one message (201
//     once, 200 with the same message otherwise), and both instances list the same history;
//  4. the database refusing connections: /readyz 503 and a send 503 `unavailable` with
//     Retry-After on both; back: /readyz 200 and sends work again, with no restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ON_POSTGRES, startServer, newUser, client, psql, pgDatabase } from './lib/server.mjs';
import { sleep } from './lib/rest-helpers.mjs';

const skip = ON_POSTGRES ? false : 'two instances share a PostgreSQL database: needs PARLEY_TEST_DB=postgres';
const show = (res) => `${res.status} ${JSON.stringify(res.body)}`;

async function history(api, roomId) {
  const out = [];
  for (let after = 0; ;) {
    const res = await api.get(`/api/chatrooms/${roomId}/messages?after_seq=${after}&limit=200`);
    assert.equal(res.status, 200, show(res));
    out.push(...res.body.messages);
    if (!res.body.has_more) return out;
    after = res.body.messages.at(-1).seq;
  }
}

// Polls /readyz on url until it answers `status` (at most ms).
async function readyzBecomes(url, status, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = (await client(url).get('/readyz')).status;
    if (last === status) return;
    await sleep(100);
  }
  assert.fail(`/readyz of ${url} stayed ${last}, expected ${status}`);
}

test('two instances on one PostgreSQL database', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-multi-'));
  const db = pgDatabase(dir);
  // Same data directory: the same database and the same --jwt-secret-file.
  const [A, B] = await Promise.all([startServer({ dir }), startServer({ dir })]);
  try {
    let alice, bob, room;

    await t.test('a user of one instance logs in through the other, and its token works there', async () => {
      alice = await newUser(A, 'alice');
      bob = await newUser(B, 'bob');
      const login = await client(B.url).post('/api/auth/login', { username: alice.user.username, password: 'password123' });
      assert.equal(login.status, 200, show(login));
      assert.equal(login.body.user.id, alice.user.id);
      const onB = await client(B.url, alice.token).get('/api/chatrooms');
      assert.equal(onB.status, 200, show(onB));
      const found = await client(A.url, bob.token).get(`/api/users?query=${bob.user.username}`);
      assert.equal(found.status, 200, show(found));
      assert.deepEqual(found.body.users.map((u) => u.id), [bob.user.id]);
    });

    await t.test('sends through both at once: gap-free seqs, one message per client_msg_id', async () => {
      const created = await client(A.url, alice.token).post('/api/chatrooms', { name: 'shared', member_ids: [bob.user.id] });
      assert.equal(created.status, 201, show(created));
      room = created.body;
      const senders = [
        { who: alice, url: A.url }, { who: alice, url: B.url },
        { who: bob, url: A.url }, { who: bob, url: B.url },
      ];
      const results = new Map(); // sender:cmid → [responses]
      const plain = [];
      await Promise.all(senders.map(async ({ who, url }) => {
        const api = client(url, who.token);
        for (let i = 0; i < 25; i++) {
          // Every keyed send goes through both instances (the two loops of one user).
          const cmid = i % 2 === 0 ? `k${i}` : undefined;
          const body = cmid ? { content: `${who.user.username} ${i}`, client_msg_id: cmid } : { content: `p ${i} ${url}` };
          const res = await api.post(`/api/chatrooms/${room.id}/messages`, body);
          assert.ok(res.status === 201 || (cmid && res.status === 200), show(res));
          if (cmid) {
            const key = `${who.user.id}:${cmid}`;
            if (!results.has(key)) results.set(key, []);
            results.get(key).push(res);
          } else {
            plain.push(res.body);
          }
        }
      }));
      const seqs = new Set(plain.map((m) => m.seq));
      assert.equal(seqs.size, plain.length, 'a seq was given twice');
      for (const [key, rs] of results) {
        assert.equal(rs.length, 2, key);
        assert.deepEqual(rs.map((r) => r.status).sort(), [200, 201], `${key}: ${rs.map(show)}`);
        assert.equal(rs[0].body.id, rs[1].body.id, key);
        assert.equal(rs[0].body.seq, rs[1].body.seq, key);
        assert.ok(!seqs.has(rs[0].body.seq), `${key}: seq ${rs[0].body.seq} also used by another message`);
        seqs.add(rs[0].body.seq);
      }
      const n = plain.length + results.size;
      assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i + 1), 'seqs 1..N');
      const [hA, hB] = await Promise.all([history(client(A.url, bob.token), room.id), history(client(B.url, alice.token), room.id)]);
      assert.equal(hA.length, n);
      assert.deepEqual(hA, hB, 'both instances list the same history');
      for (let i = 1; i < hA.length; i++) assert.ok(hA[i].created_at >= hA[i - 1].created_at, `created_at goes back at seq ${hA[i].seq}`);
    });

    await t.test('the database gone: 503 on both; back: ready again without a restart', async () => {
      psql(`ALTER DATABASE ${db} ALLOW_CONNECTIONS false`);
      psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${db}'`);
      try {
        for (const S of [A, B]) {
          await readyzBecomes(S.url, 503);
          const res = await client(S.url, alice.token).post(`/api/chatrooms/${room.id}/messages`, { content: 'lost' });
          assert.equal(res.status, 503, show(res));
          assert.equal(res.body.error.code, 'unavailable');
          assert.ok(res.headers.get('retry-after'), 'Retry-After');
        }
      } finally {
        psql(`ALTER DATABASE ${db} ALLOW_CONNECTIONS true`);
      }
      for (const S of [A, B]) {
        await readyzBecomes(S.url, 200);
        const res = await client(S.url, bob.token).post(`/api/chatrooms/${room.id}/messages`, { content: 'back' });
        assert.equal(res.status, 201, show(res));
      }
    });
  } finally {
    await Promise.all([A.stop(), B.stop()]);
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  }
});
