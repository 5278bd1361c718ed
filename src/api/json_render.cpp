#include "api/json_render.h"

#include <boost/json.hpp>

namespace parley::api {
namespace json = boost::json;

json::object to_json(const chat::User& u) {
  return {{"id", format_id(u.id)}, {"username", u.username}, {"created_at", format_rfc3339(u.created_at)}};
}

json::array to_json(const std::vector<chat::User>& users) {
  json::array a;
  a.reserve(users.size());
  for (const auto& u : users) a.push_back(to_json(u));
  return a;
}

json::object to_json(const chat::Upload& u) {
  json::object o{{"id", format_id(u.id)}, {"filename", u.filename}, {"content_type", u.content_type}, {"size", u.size}};
  o["sha256"] = u.complete ? json::value(u.sha256) : json::value(nullptr);
  if (!u.url.empty()) o["url"] = u.url;
  return o;
}

json::object to_json(const chat::Reactions& r) {
  json::object o;
  for (const auto& [emoji, users] : r) {
    json::array ids;
    for (Id u : users) ids.push_back(json::string(format_id(u)));
    o[emoji] = std::move(ids);
  }
  return o;
}

json::object to_json(const chat::Message& m) {
  json::object o{{"id", format_id(m.id)},
                 {"room_id", format_id(m.room_id)},
                 {"sender_id", format_id(m.sender_id)},
                 {"content", m.content},
                 {"seq", m.seq},
                 {"created_at", format_rfc3339(m.created_at)}};
  if (m.client_msg_id) o["client_msg_id"] = *m.client_msg_id;
  o["reactions"] = to_json(m.reactions);
  if (!m.attachments.empty()) {
    json::array a;
    for (const auto& u : m.attachments) a.push_back(to_json(u));
    o["attachments"] = std::move(a);
  }
  return o;
}

json::value to_json(const std::optional<chat::Message>& m) {
  if (!m) return nullptr;
  return to_json(*m);
}

json::object to_json(const chat::RoomView& r) {
  json::object o;
  o["id"] = format_id(r.room.id);
  if (r.room.name)
    o["name"] = *r.room.name;
  else
    o["name"] = nullptr;
  o["type"] = r.room.type == chat::RoomType::Direct ? "direct" : "group";
  o["members"] = to_json(r.members);
  o["created_by"] = format_id(r.room.created_by);
  o["created_at"] = format_rfc3339(r.room.created_at);
  o["last_seq"] = r.room.last_seq;
  o["unread_count"] = r.unread_count;
  o["last_message"] = to_json(r.last_message);
  return o;
}

json::object to_json(const chat::ReadResult& r) {
  return {{"room_id", format_id(r.room_id)}, {"up_to_seq", r.up_to_seq}, {"unread_count", r.unread_count}};
}

}  // namespace parley::api
