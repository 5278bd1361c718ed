// The Parley web client: one page, two kinds of socket (the sidebar's /ws for every room, a
// chatroom's /api/ws for the open room), REST for the rest. State lives here; the DOM is
// updated from it. Contract: CONTRACT.md; events: docs/asyncapi.yaml.

import { Api, ApiError, sleep } from './api.js';
import { Socket } from './socket.js';
import { $, h, timeOf, formatSize } from './dom.js';

const TOKEN_KEY = 'parley.token';
const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const TYPING_SHOW_MS = 6000;      // a start not refreshed ends by itself (the server's rule too)
const TYPING_REFRESH_MS = 3000;   // a typer re-sends start this often while typing
const TYPING_IDLE_MS = 4000;      // … and stop after this long without a key
const DELIVERED_DELAY_MS = 250;   // delivered frames coalesced per room
const MAX_PRESENCE_LOOKUPS = 100; // direct rooms whose presence is fetched at start

const api = new Api(sessionStorage.getItem(TOKEN_KEY));
const state = {
  me: null,
  rooms: new Map(),     // id → room (REST shape)
  presence: new Map(),  // user id → 'online' | 'offline'
  presenceEpoch: 0,     // counts presence events (a GET answer older than one loses)
  sidebar: null,        // Socket
  chat: null,           // the open room (see openRoom)
  delivered: new Map(), // room id → {seq, timer}
};

// ---------------------------------------------------------------- auth

function showAuth(message = '') {
  closeSockets();
  state.me = null;
  state.rooms.clear();
  $('shell').hidden = true;
  $('auth').hidden = false;
  $('auth-error').textContent = message;
  $('username').focus();
}

async function authenticate(register) {
  const username = $('username').value.trim().toLowerCase();
  const password = $('password').value;
  $('auth-error').textContent = '';
  try {
    const r = register ? await api.register(username, password) : await api.login(username, password);
    sessionStorage.setItem(TOKEN_KEY, r.token);
    api.token = r.token;
    $('password').value = '';
    await start(r.user);
  } catch (e) {
    $('auth-error').textContent = e instanceof ApiError ? e.message : String(e);
  }
}

async function logout() {
  try { await api.logout(); } catch { /* the token is dropped either way */ }
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  showAuth();
}

api.onUnauthorized = () => {
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  showAuth('Your session has ended; please log in again.');
};

// ---------------------------------------------------------------- start

async function start(me) {
  state.me = me;
  $('auth').hidden = true;
  $('shell').hidden = false;
  $('me').textContent = me.username;
  await loadRooms();
  const url = () => `/ws?token=${encodeURIComponent(api.token)}`;
  state.sidebar = new Socket(url, {
    onEvent: onSidebarEvent,
    onState: (open) => {
      renderConnection();
      // Rooms made and statuses changed while the socket was away.
      if (open) loadRooms().then(() => lookUpPresence(true)).catch(() => {});
    },
    onFatal: (code, reason) => showAuth(reason === 'token revoked' ? 'You were logged out.' : `Disconnected: ${reason}`),
  });
  renderConnection();
}

function closeSockets() {
  state.sidebar?.close();
  state.sidebar = null;
  closeChat();
}

function renderConnection() {
  const ok = state.sidebar?.open && (!state.chat || state.chat.socket?.open);
  const el = $('connection-state');
  el.textContent = ok ? 'online' : 'reconnecting';
  el.dataset.state = ok ? 'online' : 'reconnecting';
}

// ---------------------------------------------------------------- rooms (sidebar)

async function loadRooms() {
  const { chatrooms } = await api.rooms();
  const seen = new Set();
  for (const r of chatrooms) {
    seen.add(r.id);
    const old = state.rooms.get(r.id);
    // A snapshot older than what the sockets already told keeps the newer count.
    if (old && old.last_seq > r.last_seq) continue;
    state.rooms.set(r.id, r);
  }
  for (const id of [...state.rooms.keys()]) if (!seen.has(id)) state.rooms.delete(id);
  renderRooms();
}

function otherMember(room) {
  return room.members.find((m) => m.id !== state.me.id) || room.members[0];
}

function roomTitle(room) {
  if (room.type === 'direct') return otherMember(room)?.username ?? 'direct';
  return room.name || 'group';
}

function activity(room) {
  return Date.parse(room.last_message?.created_at ?? room.created_at) || 0;
}

function renderRooms() {
  const list = $('room-list');
  const rooms = [...state.rooms.values()].sort((a, b) => activity(b) - activity(a) || (a.id < b.id ? 1 : -1));
  const items = rooms.map((room) => {
    const other = room.type === 'direct' ? otherMember(room) : null;
    const unread = room.unread_count > 0 ? String(room.unread_count) : '';
    const last = room.last_message ? room.last_message.content : 'No messages yet';
    const open = state.chat?.id === room.id;
    return h('li', { dataset: { testid: 'room-item', roomId: room.id }, 'aria-current': open ? 'true' : null, class: open ? 'open' : '' },
      h('button', { type: 'button', class: 'room-btn', onclick: () => openRoom(room.id),
        'aria-label': `${roomTitle(room)}${unread ? `, ${unread} unread` : ''}` },
        other ? h('span', { class: 'dot', dataset: { testid: 'presence', status: state.presence.get(other.id) || 'offline' },
          title: state.presence.get(other.id) || 'offline' }) : h('span', { class: 'dot group', 'aria-hidden': 'true' }),
        h('span', { class: 'room-text' },
          h('span', { class: 'room-name', text: roomTitle(room) }),
          h('span', { class: 'room-last', text: last })),
        h('span', { class: unread ? 'badge' : 'badge empty', dataset: { testid: 'unread-badge' }, text: unread })));
  });
  list.replaceChildren(...items);
}

async function fetchRoom(id) {
  try {
    const r = await api.room(id);
    state.rooms.set(r.id, r);
    renderRooms();
    return r;
  } catch {
    return null;
  }
}

// The status of the other member of every direct room (GET; events keep it live after).
// all: look up everyone again (after a reconnect: events may have been missed meanwhile).
async function lookUpPresence(all = false) {
  const others = new Set();
  for (const r of state.rooms.values()) if (r.type === 'direct') others.add(otherMember(r)?.id);
  for (const id of [...others].slice(0, MAX_PRESENCE_LOOKUPS)) {
    if (!id || (!all && state.presence.has(id))) continue;
    const asked = state.presenceEpoch;
    try {
      const p = await api.presence(id);
      // An event that came while the answer was on its way is newer: it wins.
      if (state.presenceEpoch === asked || !state.presence.has(id)) state.presence.set(id, p.status);
    } catch { /* no presence known: shown offline */ }
  }
  renderRooms();
}

function onSidebarEvent(type, d) {
  switch (type) {
    case 'unread_count_update': {
      const r = state.rooms.get(d.room_id);
      if (!r) { fetchRoom(d.room_id); return; }
      if (d.last_seq < r.last_seq) return;  // older than what is shown
      r.last_seq = d.last_seq;
      r.unread_count = d.unread_count;
      renderRooms();
      return;
    }
    case 'new_message': {
      const r = state.rooms.get(d.room_id);
      if (!r) { fetchRoom(d.room_id); return; }
      if (!r.last_message || d.seq > r.last_message.seq) r.last_message = d;
      if (d.seq > r.last_seq) r.last_seq = d.seq;
      if (d.sender_id !== state.me.id) noteDelivered(d.room_id, d.seq);
      renderRooms();
      return;
    }
    case 'room_updated': {
      const r = state.rooms.get(d.room_id);
      if (r) {
        r.name = d.name;
        r.type = d.type;
        r.members = d.members;
        renderRooms();
        if (state.chat?.id === d.room_id) renderChatHeader();
      } else {
        fetchRoom(d.room_id).then(() => lookUpPresence());
      }
      return;
    }
    case 'room_left':
      state.rooms.delete(d.room_id);
      if (state.chat?.id === d.room_id) closeChat();
      renderRooms();
      return;
    default:
      onRoomEvent(type, d);
  }
}

// delivered {room_id, up_to_seq}: the grey double tick for the senders; coalesced per room.
function noteDelivered(roomId, seq) {
  const e = state.delivered.get(roomId) || { seq: 0, sent: 0, timer: null };
  if (seq <= e.sent || seq <= e.seq) return;
  e.seq = seq;
  state.delivered.set(roomId, e);
  if (e.timer) return;
  e.timer = setTimeout(() => {
    e.timer = null;
    const frame = { type: 'delivered', data: { room_id: roomId, up_to_seq: e.seq } };
    if (state.sidebar?.send(frame) || state.chat?.socket?.send(frame)) e.sent = e.seq;
  }, DELIVERED_DELAY_MS);
}

// ---------------------------------------------------------------- the open room

async function openRoom(id) {
  if (state.chat?.id === id) { showChatOnPhone(true); return; }
  closeChat();
  const room = state.rooms.get(id);
  if (!room) return;
  const chat = {
    id,
    messages: new Map(),  // seq → message
    els: new Map(),       // seq → element
    pending: new Map(),   // client_msg_id → {content, attachment_ids, el, state}
    marks: new Map(),     // user id → {read, delivered}
    typing: new Map(),    // user id → timer
    newest: 0,            // every seq up to this one is here (or older than oldest)
    oldest: null,
    hasMore: true,
    loadingOlder: false,
    firstUnread: null,
    readSent: 0,
    typingSentAt: 0,
    typingIdle: null,
    socket: null,
    settled: false,       // the first page is placed (first unread or newest): reading may count
  };
  state.chat = chat;
  $('messages').replaceChildren();
  $('typing').textContent = '';
  $('composer-form').hidden = false;
  renderRooms();
  renderChatHeader();
  showChatOnPhone(true);
  $('composer').focus();
  try {
    const full = await api.room(id);
    if (state.chat !== chat) return;
    applyWatermarks(chat, full.watermarks || []);
    const page = await api.history(id, { limit: 50 });
    if (state.chat !== chat) return;
    chat.hasMore = page.has_more;
    for (const m of page.messages) addMessage(chat, m);
    if (room.unread_count > 0) {
      const fu = await api.firstUnread(id);
      if (state.chat === chat && fu.message) chat.firstUnread = fu.message.seq;
    }
  } catch (e) {
    if (state.chat === chat) $('chat-title').textContent = `${roomTitle(room)} — ${e.message}`;
  }
  if (state.chat !== chat) return;
  // Opened at the first unread message when it is in the first page (marked as where the new
  // messages begin), else at the newest with a button to jump back to it.
  const first = chat.firstUnread && chat.els.get(chat.firstUnread);
  if (first) {
    first.classList.add('first-unread');
    first.scrollIntoView({ block: 'start' });
  } else {
    scrollToBottom();
  }
  chat.settled = true;
  updateJumpButton();
  const url = () => `/api/ws?token=${encodeURIComponent(api.token)}&room_id=${encodeURIComponent(id)}&after_seq=${chat.newest}`;
  chat.socket = new Socket(url, {
    onEvent: (type, d) => { if (state.chat === chat) onChatEvent(chat, type, d); },
    onState: (open) => {
      renderConnection();
      if (open && state.chat === chat) {
        resendPending(chat);
        api.room(id).then((r) => { if (state.chat === chat) applyWatermarks(chat, r.watermarks || []); }).catch(() => {});
      }
    },
    onFatal: () => { if (state.chat === chat) closeChat(); },
  });
  renderConnection();
  markVisibleRead();
  if (document.activeElement === document.body) $('composer').focus();
}

function closeChat() {
  const chat = state.chat;
  if (!chat) return;
  chat.socket?.close();
  for (const t of chat.typing.values()) clearTimeout(t);
  clearTimeout(chat.typingIdle);
  state.chat = null;
  $('messages').replaceChildren();
  $('composer-form').hidden = true;
  $('jump-unread').hidden = true;
  $('add-people').hidden = true;
  $('typing').textContent = '';
  $('chat-title').textContent = 'Pick a room';
  showChatOnPhone(false);
  renderRooms();
  renderConnection();
}

function showChatOnPhone(on) { $('shell').classList.toggle('chat-open', on); }

function renderChatHeader() {
  const room = state.rooms.get(state.chat?.id);
  if (room) $('chat-title').textContent = roomTitle(room);
  $('add-people').hidden = !room || room.type !== 'group';
}

function applyWatermarks(chat, marks) {
  for (const m of marks) raiseMark(chat, m.user_id, m.read_seq, m.delivered_seq);
  renderTicks(chat);
}

function raiseMark(chat, user, read, delivered) {
  const m = chat.marks.get(user) || { read: 0, delivered: 0 };
  m.read = Math.max(m.read, read || 0);
  m.delivered = Math.max(m.delivered, delivered || 0, m.read);
  chat.marks.set(user, m);
}

function onChatEvent(chat, type, d) {
  switch (type) {
    case 'new_message':
      addMessage(chat, d);
      if (d.sender_id !== state.me.id) noteDelivered(chat.id, d.seq);
      fillGap(chat);
      markVisibleRead();
      return;
    case 'ack': {
      const p = chat.pending.get(d.client_msg_id);
      if (p) { p.el.remove(); chat.pending.delete(d.client_msg_id); }
      addMessage(chat, d.message);
      return;
    }
    case 'error':
      if (d.client_msg_id && chat.pending.has(d.client_msg_id)) {
        const p = chat.pending.get(d.client_msg_id);
        if (['overloaded', 'rate_limited', 'unavailable'].includes(d.code)) {
          setTimeout(() => { if (state.chat === chat) sendPending(chat, d.client_msg_id); }, 1000);
        } else {
          p.state = 'failed';
          p.el.classList.add('failed');
          p.el.querySelector('.body').title = d.message;
        }
      }
      return;
    case 'resync_required':
      fillGap(chat, d.last_seq);
      return;
    default:
      onRoomEvent(type, d);
  }
}

// Events of a room that both kinds of socket carry: applied idempotently.
function onRoomEvent(type, d) {
  const chat = state.chat;
  switch (type) {
    case 'message_read':
      if (chat?.id === d.room_id) { raiseMark(chat, d.reader_id, d.up_to_seq, d.up_to_seq); renderTicks(chat); }
      return;
    case 'message_delivered':
      if (chat?.id === d.room_id) { raiseMark(chat, d.user_id, 0, d.up_to_seq); renderTicks(chat); }
      return;
    case 'typing':
      if (chat?.id === d.room_id && d.user_id !== state.me.id) showTyping(chat, d.user_id, d.state === 'start');
      return;
    case 'reaction':
      if (chat?.id === d.room_id) applyReaction(chat, d);
      return;
    case 'upload_progress':
      showUploadProgress(d.received, d.total);
      return;
    case 'presence':
      state.presenceEpoch++;
      state.presence.set(d.user_id, d.status);
      renderRooms();
      return;
    default:
  }
}

// Messages missing between what is here and the room's newest (after a resync_required, or
// a gap seen in new_message seqs) are paged over REST.
async function fillGap(chat, upTo = 0) {
  if (chat.filling) return;
  const highest = Math.max(upTo, ...chat.messages.keys());
  if (chat.newest >= highest) return;
  chat.filling = true;
  try {
    while (state.chat === chat && chat.newest < Math.max(upTo, ...chat.messages.keys())) {
      const page = await api.history(chat.id, { after: chat.newest, limit: 200 });
      for (const m of page.messages) addMessage(chat, m);
      if (!page.messages.length) break;
    }
  } catch { /* the next event or reconnect tries again */ } finally {
    chat.filling = false;
  }
}

function addMessage(chat, m) {
  if (m.room_id !== chat.id) return;
  const known = chat.messages.has(m.seq);
  chat.messages.set(m.seq, m);
  if (chat.oldest === null || m.seq < chat.oldest) chat.oldest = m.seq;
  if (chat.newest === 0 && chat.messages.size === 1) chat.newest = m.seq;  // the first page's newest end
  while (chat.messages.has(chat.newest + 1)) chat.newest++;
  const el = renderMessage(chat, m);
  if (known) { chat.els.get(m.seq).replaceWith(el); chat.els.set(m.seq, el); return; }
  chat.els.set(m.seq, el);
  const list = $('messages');
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  // In seq order; pending sends (no seq yet) stay last.
  let before = null;
  for (const child of list.children) {
    const s = child.dataset.seq ? Number(child.dataset.seq) : Infinity;
    if (s > m.seq) { before = child; break; }
  }
  list.insertBefore(el, before);
  if (stick || m.sender_id === state.me.id) scrollToBottom();
}

function renderMessage(chat, m) {
  const mine = m.sender_id === state.me.id;
  const room = state.rooms.get(chat.id);
  const sender = room?.members.find((u) => u.id === m.sender_id)?.username ?? 'someone';
  const el = h('article', { class: mine ? 'msg mine' : 'msg', dataset: { testid: 'message', seq: String(m.seq), messageId: m.id },
    'aria-label': `${mine ? 'You' : sender} at ${timeOf(m.created_at)}`, tabindex: '-1' },
    h('div', { class: 'meta' }, h('span', { class: 'who', text: mine ? 'You' : sender }), ' ',
      h('time', { datetime: m.created_at, text: timeOf(m.created_at) })),
    h('div', { class: 'body', text: m.content }));
  if (m.attachments?.length) {
    el.append(h('div', { class: 'attachments' }, ...m.attachments.map((a) =>
      h('a', { dataset: { testid: 'attachment' }, href: a.url, download: a.filename, class: 'attachment' },
        `📄 ${a.filename} (${formatSize(a.size)})`))));
  }
  const foot = h('div', { class: 'foot' });
  foot.append(renderReactions(m));
  foot.append(h('button', { type: 'button', class: 'icon', dataset: { testid: 'reaction-add' }, 'aria-label': 'Add a reaction',
    'aria-haspopup': 'true', onclick: (e) => openPicker(e.currentTarget, m) }, '☺'));
  if (mine) {
    foot.append(h('button', { type: 'button', class: 'icon', dataset: { testid: 'read-by' }, 'aria-label': 'Who has read it',
      'aria-haspopup': 'dialog', onclick: (e) => openReadBy(e.currentTarget, m) }, h('span', { class: 'info', 'aria-hidden': 'true' }, 'i')));
    foot.append(tickElement(tickState(chat, m.seq)));
  }
  el.append(foot);
  return el;
}

function renderReactions(m) {
  const box = h('span', { class: 'reactions' });
  for (const [emoji, users] of Object.entries(m.reactions || {})) {
    if (!users.length) continue;
    const mineToo = users.includes(state.me.id);
    box.append(h('button', { type: 'button', class: 'chip', dataset: { testid: 'reaction', emoji },
      'aria-pressed': mineToo ? 'true' : 'false', 'aria-label': `${emoji} ${users.length}`,
      onclick: () => react(m, emoji, !mineToo) }, String(users.length)));
  }
  return box;
}

function applyReaction(chat, d) {
  const seq = [...chat.messages.values()].find((m) => m.id === d.message_id)?.seq;
  if (seq === undefined) return;
  const m = chat.messages.get(seq);
  const r = { ...(m.reactions || {}) };
  const users = new Set(r[d.emoji] || []);
  if (d.action === 'add') users.add(d.user_id); else users.delete(d.user_id);
  if (users.size) r[d.emoji] = [...users]; else delete r[d.emoji];
  addMessage(chat, { ...m, reactions: r });
}

async function react(m, emoji, on) {
  closePopover();
  try {
    const r = await api.react(m.id, emoji, on);
    const chat = state.chat;
    if (chat && r?.reactions && chat.messages.get(m.seq)?.id === m.id) addMessage(chat, { ...chat.messages.get(m.seq), reactions: r.reactions });
  } catch (e) {
    flash(e.message);
  }
}

function tickState(chat, seq) {
  const room = state.rooms.get(chat.id);
  const others = (room?.members || []).filter((u) => u.id !== state.me.id);
  if (!others.length) return 'sent';
  const marks = others.map((u) => chat.marks.get(u.id) || { read: 0, delivered: 0 });
  if (marks.every((k) => k.read >= seq)) return 'read';
  if (marks.every((k) => k.delivered >= seq)) return 'delivered';
  return 'sent';
}

const TICK_TEXT = { pending: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓' };
const TICK_LABEL = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

function tickElement(s) {
  return h('span', { class: `tick ${s}`, dataset: { testid: 'tick', state: s }, 'aria-label': TICK_LABEL[s], title: TICK_LABEL[s] }, TICK_TEXT[s]);
}

function renderTicks(chat) {
  for (const [seq, el] of chat.els) {
    const t = el.querySelector('[data-testid="tick"]');
    if (!t) continue;
    const s = tickState(chat, seq);
    if (t.dataset.state !== s) t.replaceWith(tickElement(s));
  }
}

// ---------------------------------------------------------------- sending

function newClientId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
}

function send(content, attachmentIds = []) {
  const chat = state.chat;
  if (!chat) return;
  const cmid = newClientId();
  const el = h('article', { class: 'msg mine pending', dataset: { testid: 'message' } },
    h('div', { class: 'meta' }, h('span', { class: 'who', text: 'You' })),
    h('div', { class: 'body', text: content }),
    h('div', { class: 'foot' }, tickElement('pending')));
  el.addEventListener('click', () => {
    const p = chat.pending.get(cmid);
    if (p?.state === 'failed') { p.state = 'pending'; el.classList.remove('failed'); sendPending(chat, cmid); }
  });
  chat.pending.set(cmid, { content, attachment_ids: attachmentIds, el, state: 'pending' });
  $('messages').append(el);
  scrollToBottom();
  sendPending(chat, cmid);
  stopTyping(chat);
}

function sendPending(chat, cmid) {
  const p = chat.pending.get(cmid);
  if (!p) return;
  const data = { room_id: chat.id, content: p.content, client_msg_id: cmid };
  if (p.attachment_ids.length) data.attachment_ids = p.attachment_ids;
  chat.socket?.send({ type: 'send_message', data });  // not open: resent on reconnect
}

// After a reconnect every unacknowledged send goes again with its client_msg_id: the server
// answers a repeat with the original message, so nothing is stored twice.
function resendPending(chat) {
  for (const [cmid, p] of chat.pending) if (p.state === 'pending') sendPending(chat, cmid);
}

// ---------------------------------------------------------------- reading

let readBusy = false;
async function markVisibleRead() {
  const chat = state.chat;
  // Not while the room opens: the page is not placed yet, and what shows at its top for a
  // moment was never seen (it would be marked read, and the first unread lost).
  if (!chat || !chat.settled || readBusy || document.visibilityState !== 'visible') return;
  const list = $('messages');
  const box = list.getBoundingClientRect();
  let best = null;
  for (const [seq, el] of chat.els) {
    const m = chat.messages.get(seq);
    if (m.sender_id === state.me.id || seq <= chat.readSent) continue;
    const r = el.getBoundingClientRect();
    if (r.bottom > box.top && r.top < box.bottom && (!best || seq > best.seq)) best = m;
  }
  if (!best) return;
  readBusy = true;
  try {
    const r = await api.markRead(best.id);
    chat.readSent = Math.max(chat.readSent, r.up_to_seq);
    const room = state.rooms.get(chat.id);
    if (room) { room.unread_count = r.unread_count; renderRooms(); }
    updateJumpButton();
  } catch { /* retried on the next scroll or message */ } finally {
    readBusy = false;
  }
}

function updateJumpButton() {
  const chat = state.chat;
  const seq = chat?.firstUnread;
  let hidden = !seq || chat.jumped;
  if (seq) {
    const el = chat.els.get(seq);
    if (el) {
      const box = $('messages').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      hidden = r.bottom > box.top && r.top < box.bottom;
    }
  }
  $('jump-unread').hidden = hidden;
}

async function jumpToUnread() {
  const chat = state.chat;
  if (!chat?.firstUnread) return;
  const seq = chat.firstUnread;
  while (state.chat === chat && !chat.els.has(seq) && chat.hasMore) await loadOlder(200);
  const el = chat.els.get(seq);
  if (el) { el.classList.add('first-unread'); el.scrollIntoView({ block: 'start' }); el.focus(); }
  chat.jumped = true;
  $('jump-unread').hidden = true;
  markVisibleRead();
}

async function loadOlder(limit = 50) {
  const chat = state.chat;
  if (!chat || !chat.settled || chat.loadingOlder || !chat.hasMore || chat.oldest === null) return;
  chat.loadingOlder = true;
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  try {
    const page = await api.history(chat.id, { before: chat.oldest, limit });
    if (state.chat !== chat) return;
    chat.hasMore = page.has_more;
    for (const m of page.messages) addMessage(chat, m);
    list.scrollTop = list.scrollHeight - fromBottom;  // keep what was on screen in place
  } catch { /* scrolling up again retries */ } finally {
    chat.loadingOlder = false;
  }
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

// ---------------------------------------------------------------- typing

function onComposerInput() {
  const chat = state.chat;
  if (!chat) return;
  if (!$('composer').value.trim()) { stopTyping(chat); return; }
  const now = Date.now();
  if (now - chat.typingSentAt > TYPING_REFRESH_MS) {
    chat.typingSentAt = now;
    chat.socket?.send({ type: 'typing', data: { room_id: chat.id, state: 'start' } });
  }
  clearTimeout(chat.typingIdle);
  chat.typingIdle = setTimeout(() => stopTyping(chat), TYPING_IDLE_MS);
}

function stopTyping(chat) {
  clearTimeout(chat.typingIdle);
  if (!chat.typingSentAt) return;
  chat.typingSentAt = 0;
  chat.socket?.send({ type: 'typing', data: { room_id: chat.id, state: 'stop' } });
}

function showTyping(chat, user, on) {
  clearTimeout(chat.typing.get(user));
  chat.typing.delete(user);
  if (on) chat.typing.set(user, setTimeout(() => { chat.typing.delete(user); renderTyping(chat); }, TYPING_SHOW_MS));
  renderTyping(chat);
}

function renderTyping(chat) {
  if (state.chat !== chat) return;
  const room = state.rooms.get(chat.id);
  const names = [...chat.typing.keys()].map((id) => room?.members.find((u) => u.id === id)?.username ?? 'someone');
  $('typing').textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
}

// ---------------------------------------------------------------- uploads

let uploadShown = 0;
function showUploadProgress(received, total) {
  const pct = total > 0 ? Math.floor((100 * received) / total) : 100;
  if (pct < uploadShown) return;
  uploadShown = pct;
  const bar = $('upload-progress');
  bar.value = pct;
  bar.setAttribute('aria-valuenow', String(pct));
}

async function attach(file) {
  const chat = state.chat;
  if (!chat || !file) return;
  const row = $('upload-row');
  $('upload-label').textContent = `Uploading ${file.name}`;
  uploadShown = 0;
  showUploadProgress(0, file.size);
  row.hidden = false;
  try {
    const up = await api.createUpload(file);
    await api.uploadBytes(up.id, file, (sent, total) => showUploadProgress(Math.min(sent, total), total));
    showUploadProgress(file.size, file.size);
    const text = $('composer').value.trim() || file.name;
    $('composer').value = '';
    send(text, [up.id]);
  } catch (e) {
    flash(`Upload failed: ${e.message}`);
  } finally {
    setTimeout(() => { row.hidden = true; }, 800);
    $('attach').value = '';
  }
}

// ---------------------------------------------------------------- popovers

function closePopover() {
  const p = $('popover');
  p.hidden = true;
  p.replaceChildren();
  if (p.returnFocus) { p.returnFocus.focus(); p.returnFocus = null; }
}

function placePopover(anchor, ...content) {
  const p = $('popover');
  p.replaceChildren(...content);
  p.hidden = false;
  const r = anchor.getBoundingClientRect();
  p.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - p.offsetWidth - 8))}px`;
  p.style.top = `${Math.max(8, Math.min(r.bottom + 4, window.innerHeight - p.offsetHeight - 8))}px`;
  p.returnFocus = anchor;
  p.querySelector('button, [tabindex]')?.focus();
}

function openPicker(anchor, m) {
  const chat = state.chat;
  const mine = (emoji) => (chat?.messages.get(m.seq)?.reactions?.[emoji] || []).includes(state.me.id);
  placePopover(anchor, h('div', { class: 'picker', role: 'group', 'aria-label': 'Reactions' },
    ...REACTIONS.map((emoji) => h('button', { type: 'button', class: 'icon', dataset: { emoji }, 'aria-label': `React ${emoji}`,
      onclick: () => react(m, emoji, !mine(emoji)) }, emoji))));
}

async function openReadBy(anchor, m) {
  try {
    const r = await api.readByWho(m.id);
    const items = [
      ...r.read_by.map((u) => h('li', { dataset: { testid: 'read-by-user', userId: u.user_id } }, `✓✓ ${u.username}`,
        h('span', { class: 'when', text: ` read ${timeOf(u.read_at)}` }))),
      ...(r.delivered_to || []).filter((u) => !r.read_by.some((x) => x.user_id === u.user_id)).map((u) =>
        h('li', { class: 'delivered' }, `✓✓ ${u.username}`, h('span', { class: 'when', text: ` delivered ${timeOf(u.delivered_at)}` }))),
    ];
    placePopover(anchor, h('div', { class: 'read-by' },
      h('h3', { text: `Read by ${r.read_count} of ${r.member_count}` }),
      h('ul', {}, ...items),
      h('button', { type: 'button', class: 'secondary', onclick: closePopover }, 'Close')));
  } catch (e) {
    flash(e.message);
  }
}

function flash(text) {
  const t = h('div', { class: 'toast', role: 'alert', text });
  document.body.append(t);
  setTimeout(() => t.remove(), 4000);
}

// ---------------------------------------------------------------- new room

let searchTimer = null;
const chosen = new Map();  // user id → username
let addingTo = null;       // the room members are added to, or null: a new room

function openNewRoom() {
  openPeopleDialog(null);
}

// The same dialog makes a room or adds people to the open group room.
function openPeopleDialog(roomId) {
  addingTo = roomId;
  const form = $('new-room-form');
  form.classList.toggle('adding', !!roomId);
  $('new-room-title').textContent = roomId ? 'Add people' : 'New room';
  $('create-room').textContent = roomId ? 'Add' : 'Create';
  if (roomId) $('room-kind').value = 'group';
  chosen.clear();
  $('room-name').value = '';
  $('member-search').value = '';
  $('member-results').replaceChildren();
  $('new-room-error').textContent = '';
  syncRoomKind();
  $('new-room-dialog').showModal();
  $('member-search').focus();
}

function syncRoomKind() {
  const group = $('room-kind').value === 'group';
  $('room-name').disabled = !group;
  $('room-name').closest('form').classList.toggle('direct', !group);
}

async function searchMembers() {
  const q = $('member-search').value.trim().toLowerCase();
  if (!q) { $('member-results').replaceChildren(); return; }
  try {
    const { users } = await api.searchUsers(q);
    if ($('member-search').value.trim().toLowerCase() !== q) return;
    $('member-results').replaceChildren(...users.filter((u) => u.id !== state.me.id).map((u) =>
      h('li', {}, h('button', { type: 'button', class: chosen.has(u.id) ? 'result chosen' : 'result',
        dataset: { testid: 'member-result', userId: u.id }, 'aria-pressed': chosen.has(u.id) ? 'true' : 'false',
        onclick: (e) => {
          if ($('room-kind').value === 'direct') chosen.clear();
          if (chosen.has(u.id)) chosen.delete(u.id); else chosen.set(u.id, u.username);
          for (const b of $('member-results').querySelectorAll('button')) {
            const on = chosen.has(b.dataset.userId);
            b.classList.toggle('chosen', on);
            b.setAttribute('aria-pressed', on ? 'true' : 'false');
          }
          e.currentTarget.focus();
        } }, u.username))));
  } catch (e) {
    $('new-room-error').textContent = e.message;
  }
}

async function createRoom() {
  if (addingTo) { addPeople(addingTo); return; }
  const direct = $('room-kind').value === 'direct';
  const ids = [...chosen.keys()];
  $('new-room-error').textContent = '';
  try {
    if (direct && ids.length !== 1) throw new Error('Pick one person for a direct room.');
    const body = direct ? { type: 'direct', member_ids: ids } : { name: $('room-name').value.trim(), member_ids: ids };
    const room = await api.createRoom(body);
    state.rooms.set(room.id, room);
    $('new-room-dialog').close();
    renderRooms();
    lookUpPresence();
    openRoom(room.id);
  } catch (e) {
    $('new-room-error').textContent = e.message;
  }
}

async function addPeople(roomId) {
  $('new-room-error').textContent = '';
  try {
    if (!chosen.size) throw new Error('Pick someone to add.');
    let room = null;
    for (const id of chosen.keys()) room = await api.post(`/api/chatrooms/${encodeURIComponent(roomId)}/members`, { user_id: id });
    const old = state.rooms.get(roomId);
    if (old && room) old.members = room.members;
    $('new-room-dialog').close();
    renderRooms();
    renderChatHeader();
  } catch (e) {
    $('new-room-error').textContent = e.message;
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('auth-form').addEventListener('submit', (e) => { e.preventDefault(); authenticate(false); });
  $('register').addEventListener('click', () => authenticate(true));
  $('logout').addEventListener('click', logout);
  $('new-room').addEventListener('click', openNewRoom);
  $('add-people').addEventListener('click', () => { if (state.chat) openPeopleDialog(state.chat.id); });
  $('room-kind').addEventListener('change', syncRoomKind);
  $('member-search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchMembers, 150); });
  $('create-room').addEventListener('click', createRoom);
  $('cancel-room').addEventListener('click', () => $('new-room-dialog').close());
  $('back').addEventListener('click', () => showChatOnPhone(false));
  $('jump-unread').addEventListener('click', jumpToUnread);
  $('composer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('composer').value.trim();
    if (!text) return;
    $('composer').value = '';
    send(text);
  });
  $('composer').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('composer-form').requestSubmit(); }
  });
  $('composer').addEventListener('input', onComposerInput);
  $('attach').addEventListener('change', (e) => attach(e.target.files[0]));
  $('messages').addEventListener('scroll', () => {
    if ($('messages').scrollTop < 120) loadOlder();
    markVisibleRead();
    updateJumpButton();
  }, { passive: true });
  document.addEventListener('visibilitychange', markVisibleRead);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('popover').hidden) closePopover(); });
  document.addEventListener('click', (e) => {
    const p = $('popover');
    if (!p.hidden && !p.contains(e.target) && !e.target.closest('[data-testid="reaction-add"],[data-testid="read-by"]')) closePopover();
  });
}

async function boot() {
  wire();
  if (!api.token) { showAuth(); return; }
  try {
    await start(await api.get('/api/me'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // onUnauthorized showed the form
    showAuth(e.message);
    await sleep(0);
  }
}

boot();
