#include "bus/event_codec.h"

#include <boost/json.hpp>
#include <stdexcept>

namespace parley::bus {
namespace json = boost::json;
using namespace chat;

namespace {

constexpr std::int64_t kVersion = 1;
constexpr std::int64_t kMaxTypingTtlMs = 60000;  // a typing start lasts 6 s; more was not written by encode()

template <class... F>
struct Visitor : F... {
  using F::operator()...;
};
template <class... F>
Visitor(F...) -> Visitor<F...>;

// Ids, seqs and times are JSON integers; the instance id and the counter are unsigned.
json::object message_json(const Message& m) {
  json::object o{{"id", m.id}, {"room", m.room_id}, {"sender", m.sender_id}, {"content", m.content},
                 {"seq", m.seq},  {"at", m.created_at}};
  if (m.client_msg_id) o["cmid"] = *m.client_msg_id;
  if (!m.attachments.empty()) {  // the renderer's fields (no file key: receivers never open files)
    json::array a;
    for (const auto& u : m.attachments)
      a.push_back(json::object{{"id", u.id}, {"by", u.uploader}, {"name", u.filename}, {"type", u.content_type},
                               {"size", u.size}, {"sha", u.sha256}, {"at", u.created_at}, {"url", u.url}});
    o["att"] = std::move(a);
  }
  return o;
}

json::object body(const Event& e, const char*& tag) {
  return std::visit(
      Visitor{
          [&](const MessageCreated& x) {
            tag = "mc";
            json::array members;
            members.reserve(x.members.size());
            for (const auto& m : x.members) members.push_back(json::array{m.user, m.read_seq});
            return json::object{{"m", message_json(x.message)}, {"members", std::move(members)}, {"origin", x.origin}};
          },
          [&](const MessageRead& x) {
            tag = "mr";
            json::array status, members;
            for (const auto& [u, t] : x.read_status) status.push_back(json::array{u, t});
            for (Id u : x.members) members.push_back(u);
            return json::object{{"room", x.room},
                                {"reader", x.reader},
                                {"m", message_json(x.newest_read)},
                                {"read_at", x.read_at},
                                {"status", std::move(status)},
                                {"members", std::move(members)},
                                {"last_seq", x.last_seq}};
          },
          [&](const MessageDelivered& x) {
            tag = "md";
            json::array members;
            for (Id u : x.members) members.push_back(u);
            return json::object{{"room", x.room},
                                {"user", x.user},
                                {"up_to", x.up_to_seq},
                                {"at", x.delivered_at},
                                {"members", std::move(members)},
                                {"last_seq", x.last_seq}};
          },
          [&](const MemberJoined& x) {
            tag = "mj";
            return json::object{{"room", x.room}, {"user", x.user}, {"last_seq", x.last_seq}, {"read_seq", x.read_seq}};
          },
          [&](const MemberLeft& x) {
            tag = "ml";
            return json::object{{"room", x.room}, {"user", x.user}, {"last_seq", x.last_seq}, {"at", x.at}};
          },
          [&](const RoomUpdated& x) {
            tag = "ru";
            json::array members, joined;
            members.reserve(x.members.size());
            for (const auto& u : x.members) members.push_back(json::array{u.id, u.username, u.created_at});
            for (Id j : x.joined) joined.push_back(j);
            json::object o{{"room", x.room},
                           {"type", x.type == RoomType::Direct ? "d" : "g"},
                           {"members", std::move(members)},
                           {"joined", std::move(joined)},
                           {"created", x.created},
                           {"at", x.at}};
            if (x.name) o["name"] = *x.name;
            return o;
          },
          [&](const TokensRevoked& x) {
            tag = "tr";
            return json::object{{"user", x.user}, {"version", x.version}};
          },
          [&](const Typing& x) {
            tag = "ty";
            return json::object{{"room", x.room}, {"user", x.user}, {"start", x.start}, {"ttl", x.ttl_ms}};
          },
          [&](const ReactionChanged& x) {
            tag = "rc";
            json::array members;
            for (Id u : x.members) members.push_back(u);
            return json::object{{"msg", x.message}, {"room", x.room},   {"seq", x.seq}, {"user", x.user},
                                {"emoji", x.emoji}, {"add", x.add},     {"at", x.at},   {"members", std::move(members)}};
          },
          [&](const Presence& x) {
            tag = "pr";
            json::array audience;
            for (Id u : x.audience) audience.push_back(u);
            json::object o{{"user", x.user}, {"online", x.online}, {"at", x.at}, {"audience", std::move(audience)}};
            if (x.last_seen) o["seen"] = *x.last_seen;
            return o;
          },
          [&](const UploadProgress& x) {
            tag = "up";
            return json::object{{"upload", x.upload}, {"user", x.user}, {"received", x.received}, {"total", x.total}};
          },
      },
      e);
}

struct Bad : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json::value& field(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end()) throw Bad("missing \"" + std::string(k) + "\"");
  return it->value();
}
std::int64_t int_of(const json::value& v, std::string_view what) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  throw Bad("\"" + std::string(what) + "\" is not an integer");
}
std::uint64_t uint_of(const json::value& v, std::string_view what) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  throw Bad("\"" + std::string(what) + "\" is not an unsigned integer");
}
// Ids are positive, seqs and times not negative: anything else was not written by encode().
Id id_at(const json::object& o, std::string_view k) {
  std::int64_t v = int_of(field(o, k), k);
  if (v <= 0) throw Bad("\"" + std::string(k) + "\" is not an id");
  return v;
}
std::int64_t count_at(const json::object& o, std::string_view k) {
  std::int64_t v = int_of(field(o, k), k);
  if (v < 0) throw Bad("\"" + std::string(k) + "\" is negative");
  return v;
}
const json::object& object_at(const json::object& o, std::string_view k) {
  const auto& v = field(o, k);
  if (!v.is_object()) throw Bad("\"" + std::string(k) + "\" is not an object");
  return v.get_object();
}
const json::array& array_at(const json::object& o, std::string_view k) {
  const auto& v = field(o, k);
  if (!v.is_array()) throw Bad("\"" + std::string(k) + "\" is not an array");
  return v.get_array();
}
std::string string_at(const json::object& o, std::string_view k) {
  const auto& v = field(o, k);
  if (!v.is_string()) throw Bad("\"" + std::string(k) + "\" is not a string");
  return std::string(v.get_string());
}
bool bool_at(const json::object& o, std::string_view k) {
  const auto& v = field(o, k);
  if (!v.is_bool()) throw Bad("\"" + std::string(k) + "\" is not a boolean");
  return v.get_bool();
}
// [a, b]: two integers.
std::pair<std::int64_t, std::int64_t> pair_of(const json::value& v, std::string_view what) {
  if (!v.is_array() || v.get_array().size() != 2) throw Bad("an entry of \"" + std::string(what) + "\" is not a pair");
  const auto& a = v.get_array();
  return {int_of(a[0], what), int_of(a[1], what)};
}

Message message_of(const json::object& o) {
  Message m;
  m.id = id_at(o, "id");
  m.room_id = id_at(o, "room");
  m.sender_id = id_at(o, "sender");
  m.content = string_at(o, "content");
  m.seq = count_at(o, "seq");
  m.created_at = count_at(o, "at");
  if (o.contains("cmid")) m.client_msg_id = string_at(o, "cmid");
  if (o.contains("att")) {
    for (const auto& v : array_at(o, "att")) {
      if (!v.is_object()) throw Bad("an attachment is not an object");
      const auto& a = v.get_object();
      Upload u;
      u.id = id_at(a, "id");
      u.uploader = id_at(a, "by");
      u.filename = string_at(a, "name");
      u.content_type = string_at(a, "type");
      u.size = count_at(a, "size");
      u.sha256 = string_at(a, "sha");
      u.created_at = count_at(a, "at");
      u.url = string_at(a, "url");
      u.complete = true;  // only finished uploads are attached
      m.attachments.push_back(std::move(u));
    }
  }
  return m;
}

Event event_of(std::string_view tag, const json::object& b) {
  if (tag == "mc") {
    MessageCreated x;
    x.message = message_of(object_at(b, "m"));
    for (const auto& v : array_at(b, "members")) {
      auto [u, r] = pair_of(v, "members");
      if (u <= 0 || r < 0) throw Bad("a member is out of range");
      x.members.push_back(MemberSeq{u, r});
    }
    x.origin = string_at(b, "origin");
    return x;
  }
  if (tag == "mr") {
    MessageRead x;
    x.room = id_at(b, "room");
    x.reader = id_at(b, "reader");
    x.newest_read = message_of(object_at(b, "m"));
    x.read_at = count_at(b, "read_at");
    for (const auto& v : array_at(b, "status")) {
      auto [u, t] = pair_of(v, "status");
      if (u <= 0 || t < 0) throw Bad("a read status is out of range");
      x.read_status.emplace_back(u, t);
    }
    for (const auto& v : array_at(b, "members")) {
      std::int64_t u = int_of(v, "members");
      if (u <= 0) throw Bad("a member is not an id");
      x.members.push_back(u);
    }
    x.last_seq = count_at(b, "last_seq");
    return x;
  }
  if (tag == "md") {
    MessageDelivered x;
    x.room = id_at(b, "room");
    x.user = id_at(b, "user");
    x.up_to_seq = count_at(b, "up_to");
    x.delivered_at = count_at(b, "at");
    for (const auto& v : array_at(b, "members")) {
      std::int64_t u = int_of(v, "members");
      if (u <= 0) throw Bad("a member is not an id");
      x.members.push_back(u);
    }
    x.last_seq = count_at(b, "last_seq");
    if (x.up_to_seq > x.last_seq) throw Bad("\"up_to\" is past \"last_seq\"");
    return x;
  }
  if (tag == "mj") return MemberJoined{id_at(b, "room"), id_at(b, "user"), count_at(b, "last_seq"), count_at(b, "read_seq")};
  if (tag == "ml")  // "at": absent from instances older than room_left (0: before anything)
    return MemberLeft{id_at(b, "room"), id_at(b, "user"), count_at(b, "last_seq"), b.contains("at") ? count_at(b, "at") : 0};
  if (tag == "ru") {
    RoomUpdated x;
    x.room = id_at(b, "room");
    if (b.contains("name")) x.name = string_at(b, "name");
    std::string type = string_at(b, "type");
    if (type != "g" && type != "d") throw Bad("\"type\" is not a room type");
    x.type = type == "d" ? RoomType::Direct : RoomType::Group;
    for (const auto& v : array_at(b, "members")) {
      if (!v.is_array() || v.get_array().size() != 3 || !v.get_array()[1].is_string())
        throw Bad("an entry of \"members\" is not [id, username, created_at]");
      const auto& a = v.get_array();
      User u;
      u.id = int_of(a[0], "members");
      u.username = std::string(a[1].get_string());
      u.created_at = int_of(a[2], "members");
      if (u.id <= 0 || u.created_at < 0) throw Bad("a member is out of range");
      x.members.push_back(std::move(u));
    }
    for (const auto& v : array_at(b, "joined")) {
      std::int64_t u = int_of(v, "joined");
      if (u <= 0) throw Bad("a joined member is not an id");
      x.joined.push_back(u);
    }
    const auto& created = field(b, "created");
    if (!created.is_bool()) throw Bad("\"created\" is not a boolean");
    x.created = created.get_bool();
    x.at = count_at(b, "at");
    return x;
  }
  if (tag == "tr") return TokensRevoked{id_at(b, "user"), count_at(b, "version")};
  if (tag == "ty") {
    Typing x{id_at(b, "room"), id_at(b, "user"), bool_at(b, "start"), count_at(b, "ttl")};
    if (x.ttl_ms > kMaxTypingTtlMs) throw Bad("\"ttl\" is out of range");
    return x;
  }
  if (tag == "rc") {
    ReactionChanged x{id_at(b, "msg"), id_at(b, "room"), count_at(b, "seq"), id_at(b, "user"), string_at(b, "emoji"),
                      bool_at(b, "add"),  count_at(b, "at"),  {}};
    if (x.emoji.empty() || x.emoji.size() > 32) throw Bad("\"emoji\" is out of range");
    for (const auto& v : array_at(b, "members")) {
      std::int64_t u = int_of(v, "members");
      if (u <= 0) throw Bad("a member is not an id");
      x.members.push_back(u);
    }
    return x;
  }
  if (tag == "pr") {
    Presence x{id_at(b, "user"), bool_at(b, "online"), std::nullopt, count_at(b, "at"), {}};
    if (b.contains("seen")) x.last_seen = count_at(b, "seen");
    const auto& audience = array_at(b, "audience");
    if (audience.size() > Presence::kMaxPresenceAudience) throw Bad("\"audience\" is too long");
    for (const auto& v : audience) {
      std::int64_t u = int_of(v, "audience");
      if (u <= 0) throw Bad("an audience member is not an id");
      x.audience.push_back(u);
    }
    return x;
  }
  if (tag == "up") {
    UploadProgress x{id_at(b, "upload"), id_at(b, "user"), count_at(b, "received"), count_at(b, "total")};
    if (x.received > x.total) throw Bad("\"received\" is past \"total\"");
    return x;
  }
  throw Bad("unknown event type \"" + std::string(tag) + "\"");
}

}  // namespace

std::string encode(const Event& event, std::uint64_t instance, std::uint64_t number) {
  const char* tag = "";
  json::object e = body(event, tag);
  json::object o{{"v", kVersion}, {"i", instance}, {"n", number}, {"t", tag}, {"e", std::move(e)}};
  return json::serialize(o);
}

std::optional<Envelope> decode(std::string_view text, std::string* error) {
  try {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = 8;  // the deepest envelope is 4 levels
    json::value v = json::parse(text, ec, {}, opts);
    if (ec) throw Bad("not JSON: " + ec.message());
    if (!v.is_object()) throw Bad("not an object");
    const auto& o = v.get_object();
    if (int_of(field(o, "v"), "v") != kVersion) throw Bad("unknown version");
    Envelope env;
    env.instance = uint_of(field(o, "i"), "i");
    env.number = uint_of(field(o, "n"), "n");
    std::string tag = string_at(o, "t");
    env.event = std::make_shared<const Event>(event_of(tag, object_at(o, "e")));
    return env;
  } catch (const Bad& b) {
    if (error) *error = b.what();
    return std::nullopt;
  }
}

}  // namespace parley::bus
