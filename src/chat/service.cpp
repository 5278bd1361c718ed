#include "chat/service.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "chat/read_state.h"
#include "chat/uploads.h"
#include "chat/validation.h"
#include "common/error.h"

namespace parley::chat {
namespace {

constexpr Seq kNoUpperBound = std::numeric_limits<Seq>::max();

RoomRow require_room(Tx& tx, Id room, bool lock = false) {
  auto r = lock ? tx.lock_room_by_id(room) : tx.room_by_id(room);
  if (!r) not_found("room not found");
  return *r;
}

// A valid token whose user no longer exists (the database was replaced, the key kept).
void require_caller(Tx& tx, Id caller) {
  if (!tx.user_by_id(caller)) throw Error(ErrorKind::Unauthorized, "unauthorized", "the token's user does not exist");
}

// The caller's active membership of the room, or 403.
MemberRow require_member(Tx& tx, Id room, Id user) {
  auto m = tx.member(room, user);
  if (!m || !m->active) forbidden("not a member of this room");
  return *m;
}

// The reactions of messages (one query per room; a page is one room's).
void attach_reactions(Tx& tx, std::vector<Message>& ms) {
  std::map<Id, std::vector<Id>> by_room;
  for (const auto& m : ms) by_room[m.room_id].push_back(m.id);
  for (const auto& [room, ids] : by_room) {
    auto found = tx.reactions_of(room, ids);
    for (auto& m : ms)
      if (auto it = found.find(m.id); m.room_id == room && it != found.end()) m.reactions = std::move(it->second);
  }
}
void attach_reactions(Tx& tx, std::optional<Message>& m) {
  if (!m) return;
  auto found = tx.reactions_of(m->room_id, {m->id});
  if (auto it = found.find(m->id); it != found.end()) m->reactions = std::move(it->second);
}

RoomView view_of(Tx& tx, const RoomRow& room, Seq read_seq, const std::function<std::string(Id)>& url_of) {
  RoomView v;
  v.room = room;
  for (auto& m : tx.active_members(room.id)) {
    v.watermarks.push_back({m.user.id, m.read_seq, raise_delivered(m.delivered_seq, m.read_seq)});
    v.members.push_back(std::move(m.user));
  }
  v.unread_count = unread_count(room.last_seq, read_seq);
  if (room.last_seq > 0) v.last_message = tx.message_by_seq(room.id, room.last_seq);
  attach_reactions(tx, v.last_message);
  if (v.last_message) {
    std::vector<Message> one{std::move(*v.last_message)};
    fill_attachments(tx, one, url_of);
    v.last_message = std::move(one[0]);
  }
  return v;
}

// The prologue of every write in one room: the room, locked against concurrent writers of
// it, and the caller's active membership (404 / 403 otherwise, in that order).
std::pair<RoomRow, MemberRow> lock_room_as_member(Tx& tx, Id room, Id caller) {
  RoomRow r = require_room(tx, room, true);
  return {std::move(r), require_member(tx, room, caller)};
}

// Events of one write, published once it has committed (never if it rolls back).
using Outbox = std::vector<EventPtr>;

template <class E>
void emit(Outbox& out, E e) {
  out.push_back(std::make_shared<const Event>(std::move(e)));
}

// Moves (user, room)'s read watermark towards target and records the move.
ReadResult move_watermark(Tx& tx, const RoomRow& room, MemberRow member, Seq target, TimeMs now) {
  ReadResult r;
  r.room_id = room.id;
  r.last_seq = room.last_seq;
  r.at = now;
  Seq next = advance_watermark(member.read_seq, target, room.last_seq);
  if (next != member.read_seq) {
    r.moved = true;
    r.marked = next - member.read_seq;
    member.read_seq = next;
    r.delivered_moved = next > member.delivered_seq;
    member.delivered_seq = raise_delivered(member.delivered_seq, next);  // a read implies delivered
    tx.upsert_member(member);
    tx.insert_read_move(room.id, member.user_id, next, now);
  }
  r.up_to_seq = member.read_seq;
  r.unread_count = unread_count(room.last_seq, member.read_seq);
  return r;
}

// Makes user an active member (a join or re-join) with the join watermark.
void join(Tx& tx, const RoomRow& room, Id user, TimeMs now) {
  auto old = tx.member(room.id, user);
  MemberRow m;
  m.room_id = room.id;
  m.user_id = user;
  m.read_seq = join_watermark(old ? std::optional<Seq>(old->read_seq) : std::nullopt, room.last_seq);
  m.delivered_seq = raise_delivered(old ? old->delivered_seq : 0, m.read_seq);
  m.active = true;
  m.joined_at = now;
  tx.upsert_member(m);
  if (m.read_seq > 0) tx.insert_read_move(room.id, user, m.read_seq, now);
}

// The event of a moved delivered watermark (grey double ticks), to every active member.
void emit_delivered(Outbox& out, const RoomRow& room, Id user, Seq up_to_seq, TimeMs at, std::vector<Id> members) {
  emit(out, MessageDelivered{room.id, user, up_to_seq, at, std::move(members), room.last_seq});
}

// The events of a read call that moved the reader's watermark: the delivered one first when
// the read raised it too (grey, then blue), then the read (blue ticks, badges).
void emit_read(Tx& tx, Outbox& out, const RoomRow& room, Id reader, const ReadResult& r) {
  if (!r.moved) return;
  MessageRead e;
  e.room = room.id;
  e.reader = reader;
  e.read_at = r.at;
  e.newest_read = *tx.message_by_seq(room.id, r.up_to_seq);
  auto members = tx.active_members(room.id);
  if (r.delivered_moved) {
    std::vector<Id> ids;
    ids.reserve(members.size());
    for (const auto& mu : members) ids.push_back(mu.user.id);
    emit_delivered(out, room, reader, r.up_to_seq, r.at, std::move(ids));
  }
  for (auto& mu : members) {
    e.members.push_back(mu.user.id);
    if (mu.user.id == e.newest_read.sender_id || mu.read_seq < r.up_to_seq) continue;
    auto at = tx.first_read_at(room.id, mu.user.id, r.up_to_seq);
    e.read_status.emplace_back(mu.user.id, at.value_or(r.at));
  }
  e.last_seq = room.last_seq;
  emit(out, std::move(e));
}

void emit_joined(Tx& tx, Outbox& out, const RoomRow& room, Id user) {
  auto m = tx.member(room.id, user);
  emit(out, MemberJoined{room.id, user, room.last_seq, m ? m->read_seq : room.last_seq});
}

// room_updated's event: the room and its active members after the change.
void emit_room_updated(Tx& tx, Outbox& out, const RoomRow& room, std::vector<Id> joined, bool created, TimeMs at) {
  RoomUpdated e;
  e.room = room.id;
  e.name = room.name;
  e.type = room.type;
  for (auto& mu : tx.active_members(room.id)) e.members.push_back(std::move(mu.user));
  if (e.members.empty()) return;  // the last member left: nobody to tell
  e.joined = std::move(joined);
  e.created = created;
  e.at = at;
  emit(out, std::move(e));
}

}  // namespace

User ChatService::create_user(std::string_view username, const std::string& password_hash) {
  std::string name = normalize_username(username);
  std::optional<User> u;
  store_.write([&](Tx& tx) { u = tx.insert_user(name, password_hash, tx.now()); });
  if (!u) throw Error(ErrorKind::Conflict, "username_taken", "username is taken");
  return *u;
}

std::optional<UserAuth> ChatService::user_auth(std::string_view username) {
  std::string name;
  try {
    name = normalize_username(username);
  } catch (const Error&) {
    return std::nullopt;  // no such user can exist
  }
  std::optional<UserAuth> out;
  store_.read([&](Tx& tx) { out = tx.user_by_name(name); });
  return out;
}

User ChatService::get_user(Id id) {
  std::optional<User> u;
  store_.read([&](Tx& tx) { u = tx.user_by_id(id); });
  if (!u) not_found("user not found");
  return *u;
}

std::vector<User> ChatService::search_users(std::string_view prefix, int limit) {
  if (prefix.size() > kMaxUsername) bad_input("query must be at most 32 bytes");
  std::string p;
  for (char c : prefix) p.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  std::vector<User> out;
  store_.read([&](Tx& tx) { out = tx.users_by_prefix(p, limit); });
  return out;
}

std::optional<std::int64_t> ChatService::token_version(Id user) {
  std::optional<std::int64_t> v;
  store_.read([&](Tx& tx) { v = tx.token_version(user); });
  return v;
}

UserAuth ChatService::caller_auth(Id caller) {
  std::optional<UserAuth> a;
  store_.read([&](Tx& tx) { a = tx.user_auth_by_id(caller); });
  if (!a) throw Error(ErrorKind::Unauthorized, "unauthorized", "the token's user does not exist");
  return *a;
}

std::int64_t ChatService::revoke_tokens(Id caller) {
  std::int64_t version = 0;
  Outbox out;
  store_.write([&](Tx& tx) {
    out.clear();
    auto v = tx.bump_token_version(caller);
    if (!v) throw Error(ErrorKind::Unauthorized, "unauthorized", "the token's user does not exist");
    version = *v;
    emit(out, TokensRevoked{caller, version});
  });
  publish(out);
  return version;
}

std::int64_t ChatService::change_password(Id caller, const std::string& expected_old_hash,
                                          const std::string& new_hash) {
  std::int64_t version = 0;
  Outbox out;
  store_.write([&](Tx& tx) {
    out.clear();
    require_caller(tx, caller);
    if (!tx.set_password_hash(caller, expected_old_hash, new_hash))
      forbidden("the password was changed meanwhile");
    version = *tx.bump_token_version(caller);
    emit(out, TokensRevoked{caller, version});
  });
  publish(out);
  return version;
}

RoomView ChatService::create_group(Id caller, std::string_view name, const std::vector<Id>& member_ids) {
  check_room_name(name);
  if (member_ids.size() > kMaxInitialMembers) bad_input("member_ids must hold at most 1000 ids");
  std::set<Id> members(member_ids.begin(), member_ids.end());
  members.insert(caller);
  RoomView view;
  Outbox out;
  store_.write([&](Tx& tx) {
    out.clear();
    TimeMs now = tx.now();  // taken in commit order: times never go back along seq
    require_caller(tx, caller);
    for (Id m : members)
      if (!tx.user_by_id(m)) not_found("user " + format_id(m) + " not found");
    Id id = tx.insert_room(std::string(name), RoomType::Group, caller, now, std::nullopt);
    RoomRow room = require_room(tx, id);
    for (Id m : members) join(tx, room, m, now);
    for (Id m : members) emit_joined(tx, out, room, m);
    emit_room_updated(tx, out, room, {members.begin(), members.end()}, true, now);
    view = view_of(tx, room, 0, upload_url_);
  });
  publish(out);
  return view;
}

std::pair<RoomView, bool> ChatService::create_direct(Id caller, Id other) {
  if (other == caller) bad_input("a direct room needs another user");
  std::string key = format_id(std::min(caller, other)) + ":" + format_id(std::max(caller, other));
  RoomView view;
  bool created = false;
  Outbox out;
  store_.write([&](Tx& tx) {
    out.clear();
    TimeMs now = tx.now();  // taken in commit order: times never go back along seq
    require_caller(tx, caller);
    if (!tx.user_by_id(other)) not_found("user not found");
    auto existing = tx.direct_room(key);
    Id id;
    if (existing) {
      id = *existing;
    } else {
      id = tx.insert_room(std::nullopt, RoomType::Direct, caller, now, key);
      RoomRow room = require_room(tx, id);
      join(tx, room, caller, now);
      join(tx, room, other, now);
      emit_joined(tx, out, room, caller);
      emit_joined(tx, out, room, other);
      emit_room_updated(tx, out, room, {std::min(caller, other), std::max(caller, other)}, true, now);
      created = true;
    }
    RoomRow room = require_room(tx, id);
    auto me = tx.member(id, caller);
    view = view_of(tx, room, me ? me->read_seq : 0, upload_url_);
  });
  publish(out);
  return {std::move(view), created};
}

std::vector<RoomView> ChatService::list_rooms(Id caller) {
  std::vector<RoomView> out;
  store_.read([&](Tx& tx) {
    for (auto& ur : tx.rooms_of_user(caller)) out.push_back(view_of(tx, ur.room, ur.read_seq, upload_url_));
  });
  return out;
}

RoomView ChatService::get_room(Id caller, Id room_id) {
  RoomView v;
  store_.read([&](Tx& tx) {
    RoomRow room = require_room(tx, room_id);
    MemberRow me = require_member(tx, room_id, caller);
    v = view_of(tx, room, me.read_seq, upload_url_);
  });
  return v;
}

MembershipChange ChatService::add_member(Id caller, Id room_id, Id user) {
  MembershipChange out;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto [room, me] = lock_room_as_member(tx, room_id, caller);
    TimeMs now = tx.now();  // after the room lock: in commit order, times never go back along seq
    if (room.type == RoomType::Direct) bad_input("the members of a direct room never change");
    if (!tx.user_by_id(user)) not_found("user not found");
    auto existing = tx.member(room_id, user);
    if (!existing || !existing->active) {
      join(tx, room, user, now);
      emit_joined(tx, events, room, user);
      emit_room_updated(tx, events, room, {user}, false, now);
      out.changed = true;
    }
    out.room = view_of(tx, room, me.read_seq, upload_url_);
  });
  publish(events);
  return out;
}

void ChatService::remove_member(Id caller, Id room_id, Id user) {
  Outbox out;
  store_.write([&](Tx& tx) {
    out.clear();
    RoomRow room = lock_room_as_member(tx, room_id, caller).first;
    TimeMs now = tx.now();  // after the room lock: never behind an earlier change of its members
    if (room.type == RoomType::Direct) bad_input("the members of a direct room never change");
    if (user != caller && room.created_by != caller) forbidden("only the room's creator may remove others");
    auto target = tx.member(room_id, user);
    if (!target || !target->active) not_found("user is not a member of this room");
    target->active = false;
    tx.upsert_member(*target);
    emit(out, MemberLeft{room_id, user, room.last_seq, now});
    emit_room_updated(tx, out, room, {}, false, now);
  });
  publish(out);
}

SendResult ChatService::send(Id caller, Id room_id, std::string_view content,
                             const std::optional<std::string>& client_msg_id, std::string_view origin,
                             const std::vector<Id>& attachments) {
  check_content(content);
  if (attachments.size() > kMaxAttachmentsPerMessage)
    bad_input("attachment_ids holds at most " + std::to_string(kMaxAttachmentsPerMessage) + " ids");
  if (client_msg_id) check_client_msg_id(*client_msg_id);
  SendResult out;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto [room, me] = lock_room_as_member(tx, room_id, caller);
    TimeMs now = tx.now();  // after the room lock: in commit order, times never go back along seq
    if (client_msg_id) {
      if (auto prior = tx.message_by_client_id(room_id, caller, *client_msg_id)) {
        attach_reactions(tx, prior);
        out.message = std::move(*prior);
        out.created = false;
        std::vector<Message> one{std::move(out.message)};
        fill_attachments(tx, one, upload_url_);
        out.message = std::move(one[0]);
        return;
      }
    }
    Message m;
    m.room_id = room_id;
    m.sender_id = caller;
    m.content = std::string(content);
    m.seq = room.last_seq + 1;  // gap-free: the room row is locked and the seq taken at commit
    m.created_at = now;
    m.client_msg_id = client_msg_id;
    m.id = tx.insert_message(m);
    m.attachments = link_attachments(tx, caller, m.id, attachments);
    for (auto& u : m.attachments)
      if (upload_url_) u.url = upload_url_(u.id);
    tx.set_room_last_seq(room_id, m.seq, now);
    room.last_seq = m.seq;
    move_watermark(tx, room, me, m.seq, now);  // sending reads up to the own message
    // Badges are not computed here: the event carries each member's watermark and every
    // instance derives its connected users' badges and totals from it (chat/unread_tracker.h).
    MessageCreated e;
    for (auto& mu : tx.active_members(room_id)) {
      e.members.push_back(MemberSeq{mu.user.id, mu.read_seq});
    }
    out.message = std::move(m);
    out.created = true;
    e.message = out.message;
    e.origin = std::string(origin);
    emit(events, std::move(e));
  });
  publish(events);
  return out;
}

HistoryPage ChatService::history(Id caller, Id room_id, std::optional<Seq> after, std::optional<Seq> before,
                                 int limit) {
  if (limit < 1 || limit > kMaxHistoryLimit) bad_input("limit must be 1-200");
  if ((after && *after < 0) || (before && *before < 0)) bad_input("seq bounds must be >= 0");
  HistoryPage page;
  store_.read([&](Tx& tx) {
    require_room(tx, room_id);
    require_member(tx, room_id, caller);
    Seq lo = after.value_or(0);
    Seq hi = before.value_or(kNoUpperBound);
    if (hi <= lo + 1) return;  // empty window
    // With after_seq: the oldest of the window, paging forward; else the newest, paging back.
    bool forward = after.has_value();
    page.messages = forward ? tx.messages_ascending(room_id, lo, hi, limit + 1)
                            : tx.messages_descending(room_id, lo, hi, limit + 1);
    if (static_cast<int>(page.messages.size()) > limit) {
      page.has_more = true;
      page.messages.pop_back();
    }
    if (!forward) std::reverse(page.messages.begin(), page.messages.end());
    attach_reactions(tx, page.messages);
    fill_attachments(tx, page.messages, upload_url_);
  });
  return page;
}

Message ChatService::get_message(Id caller, Id message) {
  std::optional<Message> m;
  store_.read([&](Tx& tx) {
    m = tx.message_by_id(message);
    if (!m) not_found("message not found");
    require_member(tx, m->room_id, caller);
    attach_reactions(tx, m);
    std::vector<Message> one{std::move(*m)};
    fill_attachments(tx, one, upload_url_);
    m = std::move(one[0]);
  });
  return *m;
}

ReadResult ChatService::read_one(Id caller, Id message) {
  ReadResult r;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto m = tx.message_by_id(message);
    if (!m) not_found("message not found");
    auto [room, me] = lock_room_as_member(tx, m->room_id, caller);
    TimeMs now = tx.now();  // after the room lock: in commit order, times never go back along seq
    r = move_watermark(tx, room, me, m->seq, now);
    emit_read(tx, events, room, caller, r);
  });
  publish(events);
  return r;
}

std::vector<ReadResult> ChatService::read_bulk(Id caller, const std::vector<Id>& messages) {
  if (messages.empty() || messages.size() > kMaxBulkReadIds) bad_input("message_ids must hold 1-500 ids");
  std::vector<ReadResult> out;
  Outbox events;
  store_.write([&](Tx& tx) {
    out.clear();
    events.clear();
    std::vector<Id> room_order;
    std::map<Id, Seq> target;  // room -> highest seq asked for
    bool any_unknown = false, any_forbidden = false;
    for (Id id : messages) {
      auto m = tx.message_by_id(id);
      if (!m) {
        any_unknown = true;
        continue;
      }
      auto mem = tx.member(m->room_id, caller);
      if (!mem || !mem->active) {
        any_forbidden = true;
        continue;
      }
      auto [it, inserted] = target.emplace(m->room_id, m->seq);
      if (inserted)
        room_order.push_back(m->room_id);
      else
        it->second = std::max(it->second, m->seq);
    }
    // All or nothing: one refused id refuses the call.
    if (any_forbidden) forbidden("not a member of the room of a listed message");
    if (any_unknown) not_found("message not found");
    // Every room is locked first, in id order (two bulk reads never wait for each other in a
    // cycle), and the time taken after the last lock.
    std::map<Id, std::pair<RoomRow, MemberRow>> locked;
    for (auto& [room_id, seq] : target) locked.emplace(room_id, lock_room_as_member(tx, room_id, caller));
    TimeMs now = tx.now();
    for (Id room_id : room_order) {
      auto& [room, me] = locked.at(room_id);
      out.push_back(move_watermark(tx, room, me, target[room_id], now));
      emit_read(tx, events, room, caller, out.back());
    }
  });
  publish(events);
  return out;
}

ReadResult ChatService::mark_all_read(Id caller, Id room_id) {
  ReadResult r;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto [room, me] = lock_room_as_member(tx, room_id, caller);
    TimeMs now = tx.now();  // after the room lock: in commit order, times never go back along seq
    r = move_watermark(tx, room, me, room.last_seq, now);
    emit_read(tx, events, room, caller, r);
  });
  publish(events);
  return r;
}

UnreadCounts ChatService::unread_counts(Id caller) {
  UnreadCounts out;
  store_.read([&](Tx& tx) {
    for (auto& ur : tx.rooms_of_user(caller)) {
      Seq n = unread_count(ur.room.last_seq, ur.read_seq);
      out.rooms.emplace_back(ur.room.id, n);
      out.total += n;
    }
  });
  return out;
}

std::vector<std::pair<Id, std::optional<Message>>> ChatService::latest(Id caller) {
  std::vector<std::pair<Id, std::optional<Message>>> out;
  store_.read([&](Tx& tx) {
    out.clear();
    std::vector<Message> newest;  // their attachments in one query
    for (auto& ur : tx.rooms_of_user(caller)) {
      std::optional<Message> m;
      if (ur.room.last_seq > 0) m = tx.message_by_seq(ur.room.id, ur.room.last_seq);
      attach_reactions(tx, m);
      if (m) newest.push_back(*m);
      out.emplace_back(ur.room.id, std::move(m));
    }
    fill_attachments(tx, newest, upload_url_);
    std::size_t i = 0;
    for (auto& [room, m] : out)
      if (m) *m = std::move(newest[i++]);
  });
  return out;
}

FirstUnread ChatService::first_unread(Id caller, Id room_id) {
  FirstUnread out;
  store_.read([&](Tx& tx) {
    RoomRow room = require_room(tx, room_id);
    MemberRow me = require_member(tx, room_id, caller);
    out.unread_count = unread_count(room.last_seq, me.read_seq);
    if (out.unread_count > 0) {
      auto next = tx.messages_ascending(room_id, me.read_seq, kNoUpperBound, 1);
      fill_attachments(tx, next, upload_url_);
      if (!next.empty()) out.message = std::move(next.front());
      attach_reactions(tx, out.message);
    }
  });
  return out;
}

ReadByWho ChatService::read_by_who(Id caller, Id message) {
  ReadByWho out;
  store_.read([&](Tx& tx) {
    auto m = tx.message_by_id(message);
    if (!m) not_found("message not found");
    require_member(tx, m->room_id, caller);
    out.message = *m;
    for (auto& mu : tx.active_members(m->room_id)) {
      if (mu.user.id == m->sender_id) continue;
      ++out.member_count;
      std::optional<TimeMs> read_at;
      if (mu.read_seq >= m->seq) {
        read_at = tx.first_read_at(m->room_id, mu.user.id, m->seq);
        out.read_by.push_back(Reader{mu.user, read_at.value_or(m->created_at)});
      } else {
        out.unread_by.push_back(mu.user);
      }
      // Delivered when the delivered watermark passed it: at the first move that did, a read's
      // (read_moves) or a `delivered` frame's (delivered_moves), whichever came first.
      if (raise_delivered(mu.delivered_seq, mu.read_seq) >= m->seq) {
        // (read_seq below seq: the read watermark never reached it, it only moves forward.)
        auto frame_at = tx.first_delivered_move_at(m->room_id, mu.user.id, m->seq);
        std::optional<TimeMs> at = frame_at && read_at ? std::min(*frame_at, *read_at) : frame_at ? frame_at : read_at;
        out.delivered_to.push_back(Recipient{mu.user, at.value_or(m->created_at)});
      }
    }
  });
  return out;
}

DeliveredResult ChatService::mark_delivered(Id caller, Id room_id, Seq up_to_seq) {
  if (up_to_seq < 0) bad_input("up_to_seq must be a non-negative integer");
  DeliveredResult r;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto [room, me] = lock_room_as_member(tx, room_id, caller);
    TimeMs now = tx.now();  // after the room lock: in commit order, times never go back along seq
    r = DeliveredResult{room_id, me.delivered_seq, false, now};
    Seq next = advance_watermark(raise_delivered(me.delivered_seq, me.read_seq), up_to_seq, room.last_seq);
    if (next == me.delivered_seq) return;
    me.delivered_seq = next;
    tx.upsert_member(me);
    tx.insert_delivered_move(room_id, caller, next, now);
    r.up_to_seq = next;
    r.moved = true;
    std::vector<Id> members;
    for (const auto& mu : tx.active_members(room_id)) members.push_back(mu.user.id);
    emit_delivered(events, room, caller, next, now, std::move(members));
  });
  publish(events);
  return r;
}

Reactions ChatService::react(Id caller, Id message, std::string_view emoji, bool add) {
  Reactions out;
  Outbox events;
  store_.write([&](Tx& tx) {
    events.clear();
    auto m = tx.message_by_id(message);
    if (!m) not_found("message not found");
    // The room lock serializes the room's reaction changes: `at` below grows in commit order.
    RoomRow room = lock_room_as_member(tx, m->room_id, caller).first;
    check_emoji(emoji);
    TimeMs now = tx.now();
    auto found = tx.reactions_of(room.id, {message});
    out = std::move(found[message]);
    auto row = tx.reaction(room.id, message, emoji, caller);
    if ((row && row->active) == add) return;  // nothing changes: no event
    std::string key(emoji);
    if (add && !out.count(key) && out.size() >= kMaxReactionEmoji)
      throw Error(ErrorKind::Conflict, "too_many_reactions",
                  "a message holds at most " + std::to_string(kMaxReactionEmoji) + " distinct emoji");
    // Above every change of the message so far, whatever the clock does: orders them.
    auto last = tx.reactions_last_at(room.id, message);
    TimeMs at = last ? std::max(now, *last + 1) : now;
    tx.put_reaction(room.id, message, key, caller, add, at);
    auto& users = out[key];
    if (add) {
      users.push_back(caller);
    } else {
      std::erase(users, caller);
      if (users.empty()) out.erase(key);
    }
    ReactionChanged e{message, room.id, m->seq, caller, key, add, at, {}};
    for (const auto& mu : tx.active_members(room.id)) e.members.push_back(mu.user.id);
    emit(events, std::move(e));
  });
  publish(events);
  return out;
}

std::optional<TimeMs> ChatService::presence_of(Id caller, Id user) {
  std::optional<TimeMs> seen;
  store_.read([&](Tx& tx) {
    require_caller(tx, caller);
    if (!tx.user_by_id(user)) not_found("user not found");
    if (user != caller && !tx.share_room(caller, user)) forbidden("you share no room with this user");
    seen = tx.last_seen(user);
  });
  return seen;
}

std::vector<Id> ChatService::co_member_ids(Id user, int limit) {
  std::vector<Id> out;
  store_.read([&](Tx& tx) { out = tx.co_member_ids(user, limit); });
  return out;
}

std::optional<TimeMs> ChatService::last_seen(Id user) {
  std::optional<TimeMs> seen;
  store_.read([&](Tx& tx) { seen = tx.last_seen(user); });
  return seen;
}

void ChatService::set_last_seen(Id user, TimeMs at) {
  store_.write([&](Tx& tx) { tx.set_last_seen(user, at); });
}

bool ChatService::user_exists(Id user) {
  bool found = false;
  store_.read([&](Tx& tx) { found = tx.user_by_id(user).has_value(); });
  return found;
}

Seq ChatService::require_membership(Id user, Id room_id) {
  Seq last = 0;
  store_.read([&](Tx& tx) {
    last = require_room(tx, room_id).last_seq;
    require_member(tx, room_id, user);
  });
  return last;
}

std::vector<Message> ChatService::messages_after(Id user, Id room_id, Seq after, int limit) {
  std::vector<Message> out;
  store_.read([&](Tx& tx) {
    require_member(tx, room_id, user);
    out = tx.messages_ascending(room_id, after, kNoUpperBound, limit);
    attach_reactions(tx, out);
    fill_attachments(tx, out, upload_url_);
  });
  return out;
}

std::vector<RoomBadge> ChatService::badge_snapshot(Id user) {
  std::vector<RoomBadge> out;
  store_.read([&](Tx& tx) {
    for (auto& ur : tx.rooms_of_user(user)) out.push_back(RoomBadge{ur.room.id, ur.room.last_seq, ur.read_seq});
  });
  return out;
}

std::vector<Id> ChatService::active_member_ids(Id room) {
  std::vector<Id> out;
  store_.read([&](Tx& tx) {
    for (auto& mu : tx.active_members(room)) out.push_back(mu.user.id);
  });
  return out;
}

std::vector<Message> ChatService::messages_between(Id room, Seq after, Seq before, int limit) {
  std::vector<Message> out;
  store_.read([&](Tx& tx) {
    out = tx.messages_ascending(room, after, before, limit);
    attach_reactions(tx, out);
    fill_attachments(tx, out, upload_url_);
  });
  return out;
}

void ChatService::publish(std::vector<EventPtr>& events) {
  if (publisher_)
    for (auto& e : events) publisher_->publish(std::move(e));
  events.clear();
}

}  // namespace parley::chat
