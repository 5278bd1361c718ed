#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <cmath>

#include "api/events_json.h"
#include "api/ws_service.h"
#include "auth/jwt.h"
#include "chat/validation.h"
#include "common/error.h"
#include "common/time.h"

namespace parley::api {
namespace json = boost::json;

namespace {

const json::object& data_of(const void* data) {
  static const json::object empty;
  return data ? *static_cast<const json::object*>(data) : empty;
}

Inbound reply(std::string frame) { return Inbound{std::move(frame), {}}; }

// ping / heartbeat: the timestamp is echoed, but only as a finite number (a double that
// overflowed to infinity would render as invalid JSON).
Inbound stamp_reply(const char* type, const json::value& stamp) {
  return reply(json::serialize(json::object{
      {"type", type}, {"data", json::object{{"timestamp", stamp}, {"server_time", format_rfc3339(now_ms())}}}}));
}

bool finite_number(const json::value& v) {
  return v.is_int64() || v.is_uint64() || (v.is_double() && std::isfinite(v.as_double()));
}

Inbound ping(const WsIdentity&, const void* data, const std::optional<std::string>&) {
  auto ts = data_of(data).if_contains("timestamp");
  if (!ts || !finite_number(*ts))
    return reply(error_frame("invalid_request", "ping needs data.timestamp as a finite number"));
  return stamp_reply("pong", *ts);
}

Inbound heartbeat(const WsIdentity&, const void* data, const std::optional<std::string>&) {
  auto ts = data_of(data).if_contains("timestamp");
  if (ts && !finite_number(*ts))
    return reply(error_frame("invalid_request", "heartbeat data.timestamp must be a finite number"));
  return stamp_reply("heartbeat_ack", ts ? *ts : json::value(now_ms()));
}

// The room a frame names: data.room_id, which a chatroom socket may leave out (its own room)
// and may not set to another. nullopt with *why set when refused.
std::optional<Id> frame_room(const WsIdentity& who, const json::object& d, std::string& why) {
  Id room = who.room;
  if (auto r = d.if_contains("room_id")) {
    std::optional<Id> id = r->is_string() ? parse_id(r->as_string()) : std::nullopt;
    if (!id) {
      why = "room_id must be an id string";
      return std::nullopt;
    }
    if (who.room != 0 && *id != who.room) {
      why = "a chatroom socket speaks for its own room only";
      return std::nullopt;
    }
    room = *id;
  }
  if (room == 0) {
    why = "room_id is required on the sidebar socket";
    return std::nullopt;
  }
  return room;
}

// The error frame of a failed storage call.
std::string failure_frame(const Error& e, const std::optional<std::string>& cmid) {
  const char* code = e.kind() == ErrorKind::Unavailable ? "unavailable" : e.code().c_str();
  return error_frame(code, e.what(), cmid);
}

}  // namespace

namespace {

// typing: {room_id, state}. Validated here; membership from the desk (the hub's view of the
// user's rooms), read from storage only while the desk does not know them yet.
Inbound typing_frame(chat::ChatService& chat, TypingDesk* desk, const WsIdentity& who, const void* data) {
  const auto& d = data_of(data);
  auto refuse = [](const char* code, const std::string& msg) { return reply(error_frame(code, msg)); };
  Id room = who.room;
  if (auto r = d.if_contains("room_id")) {
    std::optional<Id> id = r->is_string() ? parse_id(r->as_string()) : std::nullopt;
    if (!id) return refuse("invalid_request", "room_id must be an id string");
    if (who.room != 0 && *id != who.room)
      return refuse("invalid_request", "a chatroom socket types in its own room only");
    room = *id;
  }
  if (room == 0) return refuse("invalid_request", "room_id is required on the sidebar socket");
  auto st = d.if_contains("state");
  bool start;
  if (st && st->is_string() && st->as_string() == "start")
    start = true;
  else if (st && st->is_string() && st->as_string() == "stop")
    start = false;
  else
    return refuse("invalid_request", "state must be \"start\" or \"stop\"");
  if (!desk) return refuse("unavailable", "typing is not available");
  auto answer = [](TypingDesk::Verdict v) -> std::string {
    switch (v) {
      case TypingDesk::Verdict::NotMember: return error_frame("forbidden", "not a member of this room");
      case TypingDesk::Verdict::Full: return error_frame("overloaded", "too many people typing; retry shortly");
      default: return {};
    }
  };
  auto v = desk->typing(who, room, start, false);
  if (v != TypingDesk::Verdict::Unknown) return reply(answer(v));
  Inbound in;
  in.blocking = [&chat, desk, who, room, start, answer]() -> std::string {
    try {
      chat.require_membership(who.user, room);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Unavailable) return error_frame("unavailable", e.what());
      // As the desk answers: an unknown room is one the user is not a member of.
      if (e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::Forbidden)
        return error_frame("forbidden", "not a member of this room");
      return error_frame(e.code(), e.what());
    }
    auto again = desk->typing(who, room, start, true);
    return again == TypingDesk::Verdict::Unknown ? std::string() : answer(again);
  };
  return in;
}

}  // namespace

WsDispatcher::WsDispatcher(chat::ChatService& chat, Metrics& metrics, const LoadGauge& load) {
  handlers_.emplace("ping", ping);
  handlers_.emplace("heartbeat", heartbeat);
  // send_message: validated here, stored off the IO threads, answered with ack or error.
  handlers_.emplace("send_message",
                    [&chat, &metrics, &load](const WsIdentity& who, const void* data,
                                             const std::optional<std::string>& cmid) -> Inbound {
                      const auto& d = data_of(data);
                      auto refuse = [&](const char* code, const std::string& msg) {
                        return reply(error_frame(code, msg, cmid));
                      };
                      if (!cmid) return refuse("invalid_request", "client_msg_id must be a string of 1-64 characters");
                      try {
                        chat::check_client_msg_id(*cmid);
                      } catch (const Error& e) {
                        return refuse("invalid_request", e.what());
                      }
                      std::string why;
                      auto frame_room_id = frame_room(who, d, why);
                      if (!frame_room_id) return refuse("invalid_request", why);
                      Id room = *frame_room_id;
                      auto c = d.if_contains("content");
                      if (!c || !c->is_string()) return refuse("invalid_request", "content must be a string");
                      std::string content(c->as_string());
                      try {
                        chat::check_content(content);
                      } catch (const Error& e) {
                        return refuse("invalid_request", e.what());
                      }
                      std::vector<Id> attachments;
                      if (auto a = d.if_contains("attachment_ids"); a && !a->is_null()) {
                        if (!a->is_array()) return refuse("invalid_request", "attachment_ids must be an array of ids");
                        for (const auto& v : a->as_array()) {
                          auto id = v.is_string() ? parse_id(v.as_string()) : std::nullopt;
                          if (!id) return refuse("invalid_request", "attachment_ids holds a malformed id");
                          attachments.push_back(*id);
                        }
                      }
                      if (load.overloaded()) return refuse("overloaded", "the server is busy; retry shortly");
                      Inbound in;
                      in.blocking = [&chat, &metrics, who, room, content = std::move(content), cmid,
                                     attachments = std::move(attachments)]() -> std::string {
                        try {
                          auto res = chat.send(who.user, room, content, cmid, who.connection_id, attachments);
                          if (res.created) metrics.message_stored();
                          return ack_frame(*cmid, res.message);
                        } catch (const Error& e) {
                          return failure_frame(e, cmid);
                        } catch (const std::exception&) {
                          return error_frame("unavailable", "the message could not be stored; retry", cmid);
                        }
                      };
                      return in;
                    });
  // delivered: moves the caller's delivered watermark; the answer is the message_delivered
  // event every member's connections get (this one included) when it moved, nothing when not.
  handlers_.emplace("delivered",
                    [&chat, &load](const WsIdentity& who, const void* data,
                                   const std::optional<std::string>& cmid) -> Inbound {
                      const auto& d = data_of(data);
                      auto refuse = [&](const char* code, const std::string& msg) {
                        return reply(error_frame(code, msg, cmid));
                      };
                      std::string why;
                      auto room = frame_room(who, d, why);
                      if (!room) return refuse("invalid_request", why);
                      auto u = d.if_contains("up_to_seq");
                      if (!u || !(u->is_int64() || u->is_uint64()))
                        return refuse("invalid_request", "up_to_seq must be a non-negative integer");
                      if (u->is_int64() && u->get_int64() < 0)
                        return refuse("invalid_request", "up_to_seq must be a non-negative integer");
                      // Above the room's last seq is clamped, so beyond int64 is too.
                      chat::Seq up_to =
                          u->is_int64() ? u->get_int64()
                                        : static_cast<chat::Seq>(std::min<std::uint64_t>(u->get_uint64(), INT64_MAX));
                      if (load.overloaded()) return refuse("overloaded", "the server is busy; retry shortly");
                      Inbound in;
                      in.blocking = [&chat, who, room = *room, up_to, cmid]() -> std::string {
                        try {
                          chat.mark_delivered(who.user, room, up_to);
                          return {};
                        } catch (const Error& e) {
                          return failure_frame(e, cmid);
                        } catch (const std::exception&) {
                          return error_frame("unavailable", "the delivered watermark could not be stored; retry", cmid);
                        }
                      };
                      return in;
                    });
  handlers_.emplace("typing", [this, &chat](const WsIdentity& who, const void* data, const std::optional<std::string>&) {
    return typing_frame(chat, typing_, who, data);
  });
}

Inbound WsDispatcher::dispatch(const WsIdentity& who, std::string_view text, bool rate_limited) const {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  std::optional<std::string> cmid;
  const json::object* data = nullptr;
  const json::string* type = nullptr;
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto t = o.if_contains("type"); t && t->is_string()) type = &t->as_string();
    if (auto d = o.if_contains("data"); d && d->is_object()) {
      data = &d->as_object();
      if (auto c = data->if_contains("client_msg_id"); c && c->is_string()) cmid = std::string(c->as_string());
    }
  }
  if (rate_limited) return reply(error_frame("rate_limited", "too many frames", cmid));
  if (ec || !v.is_object()) return reply(error_frame("invalid_json", "a frame must be a JSON object"));
  if (!type) return reply(error_frame("invalid_request", "type must be a string"));
  auto d = v.as_object().if_contains("data");
  if (d && !d->is_object() && !d->is_null())
    return reply(error_frame("invalid_request", "data must be an object", cmid));
  auto it = handlers_.find(std::string_view(*type));
  if (it == handlers_.end()) return reply(error_frame("unknown_type", "unknown message type", cmid));
  return it->second(who, data, cmid);
}

std::string WsService::new_connection_id() { return auth::random_key_hex(8); }

}  // namespace parley::api
