#include "api/events_json.h"

#include <boost/json.hpp>

#include "api/json_render.h"
#include "common/utf8.h"

namespace parley::api {
namespace json = boost::json;

namespace {
std::string frame(std::string_view type, json::object data) {
  return json::serialize(json::object{{"type", type}, {"data", std::move(data)}});
}
}  // namespace

std::string new_message_frame(const chat::Message& m) { return frame("new_message", to_json(m)); }

OutEventPtr new_message_event(const chat::Message& m, bool echo) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;
  ev->room = m.room_id;
  ev->seq = m.seq;
  auto o = to_json(m);
  if (echo) o["echo"] = true;
  ev->payload = frame("new_message", std::move(o));
  return ev;
}

OutEventPtr upload_progress_event(const chat::UploadProgress& e) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = e.final() ? EventClass::Message : EventClass::Ephemeral;
  ev->payload = frame("upload_progress", json::object{{"upload_id", format_id(e.upload)},
                                                      {"received", e.received},
                                                      {"total", e.total}});
  return ev;
}

OutEventPtr message_read_event(const chat::MessageRead& e) {
  json::array status;
  for (const auto& [user, at] : e.read_status)
    status.push_back(json::object{{"user_id", format_id(user)}, {"read_at", format_rfc3339(at)}});
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;
  ev->room = e.room;
  ev->payload = frame("message_read", json::object{{"room_id", format_id(e.room)},
                                                   {"reader_id", format_id(e.reader)},
                                                   {"message_id", format_id(e.newest_read.id)},
                                                   {"up_to_seq", e.newest_read.seq},
                                                   {"read_at", format_rfc3339(e.read_at)},
                                                   {"read_status", std::move(status)}});
  return ev;
}

OutEventPtr message_delivered_event(const chat::MessageDelivered& e) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;  // a tick must not be lost: never dropped
  ev->room = e.room;
  ev->payload = frame("message_delivered", json::object{{"room_id", format_id(e.room)},
                                                        {"user_id", format_id(e.user)},
                                                        {"up_to_seq", e.up_to_seq},
                                                        {"delivered_at", format_rfc3339(e.delivered_at)}});
  return ev;
}

OutEventPtr badge_event(const chat::Badge& b) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Badge;
  ev->room = b.room;
  ev->last_seq = b.last_seq;
  ev->read_seq = b.read_seq;
  ev->payload = frame("unread_count_update", json::object{{"room_id", format_id(b.room)},
                                                          {"unread_count", b.unread},
                                                          {"total_unread", b.total},
                                                          {"last_seq", b.last_seq}});
  return ev;
}

const OutEventPtr& BadgeFrames::get(const chat::Badge& b) {
  auto same = [&](const chat::Badge& x) {
    return x.room == b.room && x.unread == b.unread && x.total == b.total && x.last_seq == b.last_seq &&
           x.read_seq == b.read_seq;
  };
  for (auto& [state, ev] : states_)
    if (same(state)) return ev;
  ++rendered_;
  if (states_.size() >= kMax) {
    uncached_ = badge_event(b);
    return uncached_;
  }
  if (states_.empty()) states_.reserve(kMax);  // references handed out stay valid
  states_.emplace_back(b, badge_event(b));
  return states_.back().second;
}

OutEventPtr room_updated_event(const chat::RoomUpdated& e) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;
  ev->room = e.room;
  json::object d{{"room_id", format_id(e.room)}};
  if (e.name)
    d["name"] = *e.name;
  else
    d["name"] = nullptr;
  d["type"] = e.type == chat::RoomType::Direct ? "direct" : "group";
  d["members"] = to_json(e.members);
  ev->payload = frame("room_updated", std::move(d));
  return ev;
}

OutEventPtr room_left_event(Id room) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;
  ev->room = room;
  ev->payload = frame("room_left", json::object{{"room_id", format_id(room)}});
  return ev;
}

OutEventPtr typing_event(Id room, Id user, bool start) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Ephemeral;
  ev->room = room;
  ev->payload = frame("typing", json::object{{"room_id", format_id(room)},
                                             {"user_id", format_id(user)},
                                             {"state", start ? "start" : "stop"}});
  return ev;
}

OutEventPtr reaction_event(const chat::ReactionChanged& e) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;  // state, like a read: never dropped
  ev->room = e.room;
  ev->payload = frame("reaction", json::object{{"message_id", format_id(e.message)},
                                               {"room_id", format_id(e.room)},
                                               {"user_id", format_id(e.user)},
                                               {"emoji", e.emoji},
                                               {"action", e.add ? "add" : "remove"}});
  return ev;
}

OutEventPtr presence_event(const chat::Presence& e) {
  auto ev = std::make_shared<OutEvent>();
  ev->cls = EventClass::Message;  // state, not ephemeral: a dropped one would leave a wrong dot
  ev->payload = frame("presence", presence_json(e.user, e.online, e.last_seen));
  return ev;
}

json::object presence_json(Id user, bool online, std::optional<TimeMs> last_seen) {
  json::object d{{"user_id", format_id(user)}, {"status", online ? "online" : "offline"}};
  if (last_seen)
    d["last_seen"] = format_rfc3339(*last_seen);
  else
    d["last_seen"] = nullptr;
  return d;
}

std::string connected_frame(Id user, std::string_view connection_id, std::optional<Id> room) {
  json::object d{{"user_id", format_id(user)}, {"connection_id", connection_id}};
  if (room) d["room_id"] = format_id(*room);
  d["server_time"] = format_rfc3339(now_ms());
  return frame("connected", std::move(d));
}

std::string resync_frame(Id room, chat::Seq last_seq) {
  return frame("resync_required", json::object{{"room_id", format_id(room)}, {"last_seq", last_seq}});
}

std::string error_frame(std::string_view code, std::string_view message,
                        const std::optional<std::string>& client_msg_id) {
  json::object d{{"code", code}, {"message", to_valid_utf8(message)}};
  if (client_msg_id) d["client_msg_id"] = *client_msg_id;
  return frame("error", std::move(d));
}

std::string ack_frame(const std::string& client_msg_id, const chat::Message& m) {
  return frame("ack", json::object{{"client_msg_id", client_msg_id}, {"message", to_json(m)}});
}

}  // namespace parley::api
