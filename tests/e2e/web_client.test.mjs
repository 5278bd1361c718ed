// The built-in web client (web/) in a real browser: Debian's chromium driven by
// playwright-core, two browser contexts as two users against a real server.
// Screenshots (desktop and phone width, light and dark) go to PARLEY_ARTIFACTS_DIR
// (default: tests/artifacts/web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, newUser } from './lib/server.mjs';

const WEB_DIR = fileURLToPath(new URL('../../web', import.meta.url));
const ARTIFACTS = process.env.PARLEY_ARTIFACTS_DIR ?? fileURLToPath(new URL('../artifacts/web', import.meta.url));
const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const WAIT = { timeout: 15000 };

let server;
let browser;
const serverArgs = ['--web-dir', WEB_DIR, '--ws-cooldown-ms', '0', '--presence-grace-ms', '1000'];

before(async () => {
  server = await startServer({ args: serverArgs });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the static handler serves the client with a strict policy and revalidation', async () => {
  const res = await fetch(`${server.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html; charset=utf-8$/);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const etag = res.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]+"$/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const html = await res.text();
  // No inline script: every <script> has a src.
  for (const tag of html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\bsrc=/);
  const again = await fetch(`${server.url}/`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), '');
  const js = await fetch(`${server.url}/js/main.js`);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const head = await fetch(`${server.url}/app.css`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'text/css; charset=utf-8');
  assert.ok(Number(head.headers.get('content-length')) > 100);
  // Paths the client does not hold fall through to the API's JSON 404; the API is untouched.
  const missing = await fetch(`${server.url}/nope.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, 'not_found');
  const traversal = await fetch(`${server.url}/js/../index.html`);
  assert.notEqual(traversal.status, 500);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
});

test('a --web-dir that cannot be loaded stops start-up with the reason', async () => {
  await assert.rejects(startServer({ args: ['--web-dir', '/nonexistent/parley-web'] }), /web directory .*not a readable directory/);
});

// ---------------------------------------------------------------- helpers

let userN = 0;
function username(prefix) { return `${prefix}${process.pid % 1000}${Date.now() % 100000}${userN++}`.slice(0, 32); }

async function newPage(opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) errors.push(m.text()); });
  await page.goto(server.url + '/');
  return { context, page, errors };
}

async function register(page, name) {
  await page.getByTestId('username').fill(name);
  await page.getByTestId('password').fill('password123');
  await page.getByTestId('register').click();
  await page.getByTestId('connection-state').filter({ hasText: /^online$/ }).waitFor(WAIT);
}

const tid = (page, id) => page.getByTestId(id);
const messages = (page) => page.locator('#messages [data-testid="message"]');
async function seqsOf(page) {
  return page.locator('#messages [data-testid="message"][data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
}
async function send(page, text) {
  await tid(page, 'composer').fill(text);
  await tid(page, 'composer').press('Enter');
}
function lastOwnTick(page) {
  return page.locator('#messages [data-testid="message"].mine [data-testid="tick"]').last();
}
async function waitState(locator, value) {
  await assert.doesNotReject(async () => {
    const deadline = Date.now() + WAIT.timeout;
    for (;;) {
      const v = await locator.getAttribute('data-state').catch(() => null);
      if (v === value) return;
      if (Date.now() > deadline) throw new Error(`state stayed ${v}, wanted ${value}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

// The signed-in user's id, as the page's own token tells the server.
function myId(page) {
  return page.evaluate(() => fetch('/api/me', { headers: { Authorization: `Bearer ${sessionStorage.getItem('parley.token')}` } })
    .then((r) => r.json()).then((u) => u.id));
}

// Two users in two browser contexts, registered through the form; a has made a direct room with
// b by username search and has it open. item: the room in a's sidebar.
async function twoInADirectRoom(prefix) {
  const a = await newPage();
  const b = await newPage();
  const nameB = username(`${prefix}b`);
  await register(a.page, username(`${prefix}a`));
  await register(b.page, nameB);
  const idB = await myId(b.page);
  await tid(a.page, 'new-room').click();
  await tid(a.page, 'room-kind').selectOption('direct');
  await tid(a.page, 'member-search').fill(nameB);
  await a.page.locator(`[data-testid="member-result"][data-user-id="${idB}"]`).click();
  await tid(a.page, 'create-room').click();
  const item = a.page.locator('[data-testid="room-item"][aria-current="true"]');
  await item.waitFor(WAIT);
  return { a, b, nameB, idB, item, roomId: await item.getAttribute('data-room-id') };
}

async function shots(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

// ---------------------------------------------------------------- the conversation

test('two users: a direct room, chat both ways, ticks, badges, typing, reactions, restart', async () => {
  const a = await newPage();
  const b = await newPage();
  const nameA = username('alice');
  const nameB = username('bob');
  await register(a.page, nameA);
  await register(b.page, nameB);
  const meB = await b.page.evaluate(() => fetch('/api/me', { headers: { Authorization: `Bearer ${sessionStorage.getItem('parley.token')}` } }).then((r) => r.json()));

  // A creates a direct room with B by username search.
  await tid(a.page, 'new-room').click();
  await tid(a.page, 'room-kind').selectOption('direct');
  await tid(a.page, 'member-search').fill(nameB.slice(0, 8));
  await a.page.locator(`[data-testid="member-result"][data-user-id="${meB.id}"]`).click();
  await tid(a.page, 'create-room').click();
  const roomA = a.page.locator('[data-testid="room-item"][aria-current="true"]');
  await roomA.waitFor(WAIT);
  const roomId = await roomA.getAttribute('data-room-id');
  assert.match(roomId, /^\d+$/);

  // B learns of the room live (room_updated), without a reload; the other's dot is online.
  const roomB = b.page.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`);
  await roomB.waitFor(WAIT);
  await assert.doesNotReject(roomB.getByTestId('unread-badge').filter({ hasText: /^$/ }).waitFor({ state: 'attached', ...WAIT }));

  // A writes; the tick goes sent → delivered (B's sidebar got it) while B has not opened it.
  await send(a.page, 'hello bob');
  const msgA = messages(a.page).filter({ hasText: 'hello bob' });
  await msgA.and(a.page.locator('[data-seq]')).waitFor(WAIT);
  await waitState(lastOwnTick(a.page), 'delivered');
  // B's badge counts up, live.
  await roomB.getByTestId('unread-badge').filter({ hasText: /^1$/ }).waitFor(WAIT);
  await send(a.page, 'are you there?');
  await roomB.getByTestId('unread-badge').filter({ hasText: /^2$/ }).waitFor(WAIT);
  await shots(b.page, 'desktop-light-sidebar-unread');

  // B opens the room: both messages, the badge clears, A's ticks turn blue (read).
  await roomB.click();
  await messages(b.page).filter({ hasText: 'are you there?' }).waitFor(WAIT);
  assert.deepEqual(await seqsOf(b.page), [1, 2]);
  await roomB.getByTestId('unread-badge').filter({ hasText: /^$/ }).waitFor({ state: 'attached', ...WAIT });
  await waitState(lastOwnTick(a.page), 'read');
  await waitState(a.page.locator('#messages [data-testid="tick"]').first(), 'read');

  // Read-by popover lists B.
  await a.page.locator('#messages [data-testid="message"].mine [data-testid="read-by"]').last().click();
  await a.page.locator(`[data-testid="read-by-user"][data-user-id="${meB.id}"]`).waitFor(WAIT);
  await a.page.keyboard.press('Escape');

  // B answers; A sees it without reload, in order.
  await send(b.page, 'yes, here');
  await messages(a.page).filter({ hasText: 'yes, here' }).waitFor(WAIT);
  assert.deepEqual(await seqsOf(a.page), [1, 2, 3]);

  // Typing shows on the other side and goes when the typer clears the composer.
  await tid(b.page, 'composer').pressSequentially('typing…', { delay: 20 });
  await tid(a.page, 'typing').filter({ hasText: new RegExp(`${nameB}.*typing`) }).waitFor(WAIT);
  await tid(b.page, 'composer').fill('');
  await tid(b.page, 'composer').dispatchEvent('input');
  await tid(a.page, 'typing').filter({ hasText: /^$/ }).waitFor({ state: 'attached', ...WAIT });

  // A reaction: A reacts to B's message, both sides show the chip with its count.
  const theirs = messages(a.page).filter({ hasText: 'yes, here' });
  await theirs.getByTestId('reaction-add').click();
  await a.page.locator('#popover [data-emoji="👍"]').click();
  await theirs.locator('[data-testid="reaction"][data-emoji="👍"]').filter({ hasText: /^1$/ }).waitFor(WAIT);
  await messages(b.page).filter({ hasText: 'yes, here' }).locator('[data-testid="reaction"][data-emoji="👍"]')
    .filter({ hasText: /^1$/ }).waitFor(WAIT);
  // B adds the same one from its side (2), then A takes its own back (1 on both).
  await messages(b.page).filter({ hasText: 'yes, here' }).locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await theirs.locator('[data-testid="reaction"][data-emoji="👍"]').filter({ hasText: /^2$/ }).waitFor(WAIT);
  await theirs.locator('[data-testid="reaction"][data-emoji="👍"]').click();
  for (const p of [a.page, b.page]) {
    await messages(p).filter({ hasText: 'yes, here' }).locator('[data-testid="reaction"][data-emoji="👍"]')
      .filter({ hasText: /^1$/ }).waitFor(WAIT);
  }

  await shots(a.page, 'desktop-light-chat');

  // The server restarts in the middle of the conversation: both clients show reconnecting,
  // come back by themselves, a message written while it was down is sent once, nothing is
  // lost or doubled.
  const listen = new URL(server.url).host;
  await server.stop();
  await tid(a.page, 'connection-state').filter({ hasText: /^reconnecting$/ }).waitFor(WAIT);
  await tid(b.page, 'connection-state').filter({ hasText: /^reconnecting$/ }).waitFor(WAIT);
  await send(a.page, 'sent while the server was down');
  await waitState(lastOwnTick(a.page), 'pending');
  server = await startServer({ dir: server.dir, listen, args: serverArgs });
  await tid(a.page, 'connection-state').filter({ hasText: /^online$/ }).waitFor({ timeout: 30000 });
  await tid(b.page, 'connection-state').filter({ hasText: /^online$/ }).waitFor({ timeout: 30000 });
  await messages(b.page).filter({ hasText: 'sent while the server was down' }).waitFor(WAIT);
  await send(b.page, 'welcome back');
  await messages(a.page).filter({ hasText: 'welcome back' }).waitFor(WAIT);
  for (const p of [a.page, b.page]) {
    await p.locator('#messages [data-seq="5"]').waitFor(WAIT);  // the sender's copy once acknowledged
    assert.deepEqual(await seqsOf(p), [1, 2, 3, 4, 5]);
    assert.equal(await messages(p).count(), 5, 'no pending copy or duplicate left');
  }
  // What the server stored agrees with both screens.
  const token = await a.page.evaluate(() => sessionStorage.getItem('parley.token'));
  const hist = await (await fetch(`${server.url}/api/chatrooms/${roomId}/messages`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.deepEqual(hist.messages.map((m) => m.content),
    ['hello bob', 'are you there?', 'yes, here', 'sent while the server was down', 'welcome back']);

  // Log out: back to the form, the token no longer works.
  await tid(b.page, 'logout').click();
  await tid(b.page, 'username').waitFor(WAIT);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('screenshots at desktop and phone width, light and dark; the phone shows one pane', async () => {
  for (const scheme of ['light', 'dark']) {
    for (const [label, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 360, height: 740 }]]) {
      const { context, page, errors } = await newPage({ viewport, colorScheme: scheme });
      await register(page, username(label.slice(0, 3) + scheme.slice(0, 2)));
      await tid(page, 'new-room').click();
      await tid(page, 'room-kind').selectOption('group');
      await tid(page, 'room-name').fill(`${label} ${scheme}`);
      await tid(page, 'create-room').click();
      await send(page, `A message on a ${label} in ${scheme} mode.`);
      await waitState(lastOwnTick(page), 'sent');
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      if (scheme === 'dark') assert.match(bg, /rgb\((\d{1,2}), (\d{1,2}), (\d{1,2})\)/, `dark background, got ${bg}`);
      else assert.doesNotMatch(bg, /rgb\((\d{1,2}), (\d{1,2}), (\d{1,2})\)/, `light background, got ${bg}`);
      if (label === 'phone') {
        // One pane at a time: the chat covers the sidebar, and nothing is wider than the screen.
        assert.equal(await tid(page, 'room-list').isVisible(), false);
        const wide = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(wide <= 360, `page is ${wide}px wide`);
      }
      await shots(page, `${label}-${scheme}`);
      assert.deepEqual(errors, []);
      await context.close();
    }
  }
  assert.ok(existsSync(join(ARTIFACTS, 'phone-dark.png')));
});

test('keyboard only: register, create a group room and send, every control labelled', async () => {
  const { context, page, errors } = await newPage();
  // The form opens with the username field focused.
  await tid(page, 'username').waitFor(WAIT);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'username');
  await page.keyboard.type(username('kb'));
  await page.keyboard.press('Tab');
  await page.keyboard.type('password123');
  await page.keyboard.press('Tab');  // log in
  await page.keyboard.press('Tab');  // register
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'register');
  await page.keyboard.press('Enter');
  await tid(page, 'connection-state').filter({ hasText: /^online$/ }).waitFor(WAIT);
  // Every visible button, input, select and textarea has an accessible name.
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
    .filter((el) => el.offsetParent !== null || el.type === 'file')
    .filter((el) => !(el.getAttribute('aria-label') || el.labels?.length || el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
  await tid(page, 'new-room').focus();
  await page.keyboard.press('Enter');
  await tid(page, 'room-kind').focus();
  await tid(page, 'room-kind').selectOption('group');
  await tid(page, 'room-name').focus();
  await page.keyboard.type('keyboard room');
  await tid(page, 'create-room').focus();
  await page.keyboard.press('Enter');
  await page.locator('[data-testid="room-item"][aria-current="true"]').waitFor(WAIT);
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'composer', null, WAIT);
  await page.keyboard.type('typed with the keyboard');
  await page.keyboard.press('Enter');
  await messages(page).filter({ hasText: 'typed with the keyboard' }).and(page.locator('[data-seq="1"]')).waitFor(WAIT);
  assert.deepEqual(errors, []);
  await context.close();
});

async function login(page, name) {
  await page.getByTestId('username').fill(name);
  await page.getByTestId('password').fill('password123');
  await page.getByTestId('login').click();
  await page.getByTestId('connection-state').filter({ hasText: /^online$/ }).waitFor(WAIT);
}

test('long history: infinite scroll up, jump to the first unread, a second tab in sync', async () => {
  const a = await newUser(server, 'hista');
  const b = await newUser(server, 'histb');
  const room = (await a.api.post('/api/chatrooms', { name: 'long history', member_ids: [b.user.id] })).body;
  const N = 130;
  for (let i = 1; i <= N; i++) assert.equal((await a.api.post(`/api/chatrooms/${room.id}/messages`, { content: `line ${i}` })).status, 201);
  const all = Array.from({ length: N }, (_, i) => i + 1);

  // b has 130 unread: the room opens at the newest page with a jump button; the jump pages
  // back to seq 1 and shows every message once, in order.
  const pb = await newPage();
  await login(pb.page, b.user.username);
  const item = pb.page.locator(`[data-testid="room-item"][data-room-id="${room.id}"]`);
  await item.getByTestId('unread-badge').filter({ hasText: new RegExp(`^${N}$`) }).waitFor(WAIT);
  await item.click();
  await messages(pb.page).filter({ hasText: `line ${N}` }).waitFor(WAIT);
  await tid(pb.page, 'jump-unread').waitFor({ state: 'visible', ...WAIT });
  await tid(pb.page, 'jump-unread').click();
  await pb.page.locator('#messages [data-seq="1"]').waitFor(WAIT);
  await pb.page.waitForFunction(() => document.activeElement?.dataset.seq === '1', null, WAIT);
  assert.deepEqual(await seqsOf(pb.page), all);
  await item.getByTestId('unread-badge').filter({ hasText: /^$/ }).waitFor({ state: 'attached', ...WAIT });

  // a (nothing unread) opens at the newest 50 and scrolls up to the start.
  const pa = await newPage();
  await login(pa.page, a.user.username);
  await pa.page.locator(`[data-testid="room-item"][data-room-id="${room.id}"]`).click();
  await messages(pa.page).filter({ hasText: `line ${N}` }).waitFor(WAIT);
  assert.equal((await seqsOf(pa.page))[0], N - 49);
  // Scrolled to the top again and again until the first message is there (each page loads as
  // the previous one lands; a bound on the time, not on the number of scrolls).
  for (const deadline = Date.now() + WAIT.timeout; (await seqsOf(pa.page))[0] !== 1 && Date.now() < deadline;) {
    await pa.page.locator('#messages').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.deepEqual(await seqsOf(pa.page), all);

  // a second tab of a: what one tab sends shows in the other as a's own message (echo), once.
  const pa2 = await newPage();
  await login(pa2.page, a.user.username);
  await pa2.page.locator(`[data-testid="room-item"][data-room-id="${room.id}"]`).click();
  await messages(pa2.page).filter({ hasText: `line ${N}` }).waitFor(WAIT);
  await send(pa.page, 'from the first tab');
  const echoed = pa2.page.locator(`#messages [data-testid="message"].mine[data-seq="${N + 1}"]`);
  await echoed.filter({ hasText: 'from the first tab' }).waitFor(WAIT);
  assert.equal(await echoed.locator('[data-testid="tick"]').count(), 1);
  await messages(pb.page).filter({ hasText: 'from the first tab' }).waitFor(WAIT);
  assert.equal(await messages(pa.page).filter({ hasText: 'from the first tab' }).count(), 1);
  assert.equal(await messages(pa2.page).filter({ hasText: 'from the first tab' }).count(), 1);
  for (const p of [pa, pa2, pb]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});

test('add people to a group room by username search: the new member sees the room live', async () => {
  const a = await newPage();
  const b = await newPage();
  const nameB = username('addb');
  await register(a.page, username('adda'));
  await register(b.page, nameB);
  const idB = await myId(b.page);
  await tid(a.page, 'new-room').click();
  await tid(a.page, 'room-kind').selectOption('group');
  await tid(a.page, 'room-name').fill('later joiners');
  await tid(a.page, 'create-room').click();
  const item = a.page.locator('[data-testid="room-item"][aria-current="true"]');
  await item.waitFor(WAIT);
  const roomId = await item.getAttribute('data-room-id');
  await send(a.page, 'before b joined');
  assert.equal(await b.page.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`).count(), 0);
  await tid(a.page, 'add-people').click();
  await tid(a.page, 'member-search').fill(nameB);
  await a.page.locator(`[data-testid="member-result"][data-user-id="${idB}"]`).click();
  await tid(a.page, 'create-room').click();
  const onB = b.page.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`);
  await onB.filter({ hasText: 'later joiners' }).waitFor(WAIT);
  // History before joining is not unread for the new member.
  await onB.getByTestId('unread-badge').filter({ hasText: /^$/ }).waitFor({ state: 'attached', ...WAIT });
  await send(a.page, 'after b joined');
  await onB.getByTestId('unread-badge').filter({ hasText: /^1$/ }).waitFor(WAIT);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('presence dots: online while the other is connected, offline after the grace, right after a reconnect', async () => {
  let { a, b, nameB, item } = await twoInADirectRoom('pr');
  const dot = (status) => item.locator(`[data-testid="presence"][data-status="${status}"]`);
  await dot('online').waitFor(WAIT);
  // b closes its tab: offline once the grace (1 s here) has passed.
  await b.context.close();
  await dot('offline').waitFor(WAIT);
  // b comes back: online again, live.
  b = await newPage();
  await login(b.page, nameB);
  await dot('online').waitFor(WAIT);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('an attachment: a progress bar while it uploads, the link on both sides, a click downloads it', async () => {
  const { a, b, roomId } = await twoInADirectRoom('at');
  await b.page.locator(`[data-testid="room-item"][data-room-id="${roomId}"]`).click();

  // Every value the progress bar shows is recorded.
  await a.page.evaluate(() => {
    window.progressSeen = [];
    const bar = document.querySelector('[data-testid="upload-progress"]');
    new MutationObserver(() => window.progressSeen.push(Number(bar.getAttribute('aria-valuenow'))))
      .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
  });
  const bytes = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  await tid(a.page, 'composer').fill('the report');
  await tid(a.page, 'attach').setInputFiles({ name: 'report.bin', mimeType: 'application/octet-stream', buffer: bytes });
  const onB = messages(b.page).filter({ hasText: 'the report' });
  await onB.getByTestId('attachment').waitFor(WAIT);
  await messages(a.page).filter({ hasText: 'the report' }).getByTestId('attachment').waitFor(WAIT);
  const seen = await a.page.evaluate(() => window.progressSeen);
  assert.equal(seen.at(-1), 100, `progress ends at 100: ${seen}`);
  assert.ok(seen.every((v) => v >= 0 && v <= 100), `progress within 0..100: ${seen}`);
  assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), `progress never goes back: ${seen}`);
  const href = await onB.getByTestId('attachment').getAttribute('href');
  assert.match(href, /^\/api\/uploads\/\d+\?exp=\d+&sig=/);
  // A click downloads it through the signed link (no Bearer header): the same bytes.
  const [download] = await Promise.all([b.page.waitForEvent('download', WAIT), onB.getByTestId('attachment').click()]);
  assert.equal(download.suggestedFilename(), 'report.bin');
  assert.ok(readFileSync(await download.path()).equals(bytes), 'downloaded bytes are the uploaded ones');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});
