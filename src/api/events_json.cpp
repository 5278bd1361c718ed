#include "api/events_json.h"

#include <boost/json.hpp>

#include "api/json_render.h"

namespace parley::api {
namespace json = boost::json;

namespace {
std::string frame(std::string_view type, json::object data) {
  return json::serialize(json::object{{"type", type}, {"data", std::move(data)}});
}
}  // namespace

std::string new_message_frame(const chat::Message& m) { return frame("new_message", to_json(m)); }

std::string connected_frame(Id user, std::string_view connection_id, std::optional<Id> room) {
  json::object d{{"user_id", format_id(user)}, {"connection_id", connection_id}};
  if (room) d["room_id"] = format_id(*room);
  d["server_time"] = format_rfc3339(now_ms());
  return frame("connected", std::move(d));
}

std::string resync_frame(Id room, chat::Seq last_seq) {
  return frame("resync_required", json::object{{"room_id", format_id(room)}, {"last_seq", last_seq}});
}

std::string error_frame(std::string_view code, std::string_view message) {
  return frame("error", json::object{{"code", code}, {"message", message}});
}

OutEventPtr unread_event(const chat::UnreadState& s) {
  auto ev = std::make_shared<OutEvent>();
  ev->kind = OutEvent::Kind::UnreadCount;
  ev->room = s.room;
  ev->last_seq = s.last_seq;
  ev->read_seq = s.read_seq;
  ev->payload = frame("unread_count_update", json::object{{"room_id", format_id(s.room)},
                                                          {"unread_count", s.unread_count},
                                                          {"total_unread", s.total_unread},
                                                          {"last_seq", s.last_seq}});
  return ev;
}

void EventPublisher::message_created(const chat::MessageCreated& e) {
  fanout_.run_in_order([this, e] {
    auto ev = std::make_shared<OutEvent>();
    ev->kind = OutEvent::Kind::NewMessage;
    ev->room = e.message.room_id;
    ev->seq = e.message.seq;
    ev->payload = new_message_frame(e.message);
    std::vector<Id> others;
    others.reserve(e.members.size());
    for (Id m : e.members)
      if (m != e.message.sender_id) others.push_back(m);
    fanout_.deliver(others, ev);
    for (const auto& u : e.unread) fanout_.deliver({u.user}, unread_event(u));
  });
}

void EventPublisher::read_moved(const chat::ReadMoved& e) {
  fanout_.run_in_order([this, e] {
    json::array status;
    for (const auto& [user, at] : e.read_status)
      status.push_back(json::object{{"user_id", format_id(user)}, {"read_at", format_rfc3339(at)}});
    auto ev = std::make_shared<OutEvent>();
    ev->kind = OutEvent::Kind::MessageRead;
    ev->room = e.room;
    ev->payload = frame("message_read", json::object{{"room_id", format_id(e.room)},
                                                     {"reader_id", format_id(e.reader)},
                                                     {"message_id", format_id(e.newest_read.id)},
                                                     {"up_to_seq", e.newest_read.seq},
                                                     {"read_at", format_rfc3339(e.read_at)},
                                                     {"read_status", std::move(status)}});
    fanout_.deliver(e.members, ev);
    fanout_.deliver({e.reader}, unread_event(e.reader_unread));
  });
}

void EventPublisher::member_joined(const chat::MemberJoined& e) {
  fanout_.run_in_order([this, e] { fanout_.deliver({e.user}, unread_event(e.unread)); });
}

void EventPublisher::member_left(const chat::MemberLeft& e) {
  fanout_.run_in_order([this, e] { fanout_.revoke(e.user, e.room); });
}

}  // namespace parley::api
