#include "api/rest.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>

#include "api/events_json.h"
#include "api/json_render.h"
#include "api/known_users.h"
#include "api/router.h"
#include "api/upload_transfers.h"
#include "auth/password.h"
#include "chat/validation.h"
#include "common/error.h"
#include "common/utf8.h"

namespace parley::api {
namespace json = boost::json;
using chat::Seq;

Response error_response(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  // A message may quote client input (a path segment): never raw bytes in the body.
  r.body = json::serialize(json::object{{"error", json::object{{"code", code}, {"message", to_valid_utf8(message)}}}});
  return r;
}

namespace {

int status_of(ErrorKind k) {
  switch (k) {
    case ErrorKind::BadInput:
      return 400;
    case ErrorKind::Unauthorized:
      return 401;
    case ErrorKind::Forbidden:
      return 403;
    case ErrorKind::NotFound:
      return 404;
    case ErrorKind::Conflict:
      return 409;
    case ErrorKind::TooLarge:
      return 413;
    case ErrorKind::RateLimited:
      return 429;
    case ErrorKind::Unavailable:
      return 503;
  }
  return 500;
}

// Label values stay bounded: any method the API does not use counts as OTHER.
std::string method_label(std::string_view method) {
  static constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
  for (auto k : kMethods)
    if (method == k) return std::string(k);
  return "OTHER";
}

// 429 rate_limited with Retry-After: the whole seconds (>= 1) until a retry can pass.
Response rate_limited(std::string_view message, int wait_seconds) {
  Response r = error_response(429, "rate_limited", message);
  r.headers.emplace_back("Retry-After", std::to_string(wait_seconds));
  return r;
}

Response json_response(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  return r;
}

// A parsed request as the handlers see it.
struct Ctx {
  const Request& req;
  std::vector<std::string> params;
  json::object query_params;  // decoded query parameters (last one wins)
  Id user = 0;                // authenticated caller (0 on public routes)

  Id param_id(std::size_t i) const {
    auto id = parse_id(params.at(i));
    if (!id) bad_input("malformed id in path: " + params.at(i));
    return *id;
  }
  json::object body() const {
    json::error_code ec;
    json::value v = json::parse(req.body, ec);
    if (ec || !v.is_object()) throw Error(ErrorKind::BadInput, "invalid_json", "the body must be a JSON object");
    return std::move(v.as_object());
  }
  std::optional<std::string> query(std::string_view name) const {
    auto it = query_params.find(name);
    if (it == query_params.end()) return std::nullopt;
    return std::string(it->value().as_string());
  }
  std::optional<Seq> query_seq(std::string_view name) const {
    auto s = query(name);
    if (!s) return std::nullopt;
    if (*s == "0") return 0;
    auto v = parse_id(*s);
    if (!v) bad_input(std::string(name) + " must be a non-negative integer");
    return *v;
  }
  int query_int(std::string_view name, int def, int lo, int hi) const {
    auto s = query(name);
    if (!s) return def;
    auto v = parse_id(*s);
    if (!v || *v < lo || *v > hi)
      bad_input(std::string(name) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return static_cast<int>(*v);
  }
};

std::string field_string(const json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end() || !it->value().is_string()) bad_input(std::string(name) + " must be a string");
  return std::string(it->value().as_string());
}

std::optional<std::string> optional_string(const json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string()) bad_input(std::string(name) + " must be a string");
  return std::string(it->value().as_string());
}

Id id_value(const json::value& v, std::string_view name) {
  if (!v.is_string()) bad_input(std::string(name) + " must hold id strings");
  auto id = parse_id(v.as_string());
  if (!id) bad_input(std::string(name) + " holds a malformed id");
  return *id;
}

std::vector<Id> id_array(const json::object& o, std::string_view name, bool required) {
  auto it = o.find(name);
  if (it == o.end() || it->value().is_null()) {
    if (required) bad_input(std::string(name) + " must be an array of ids");
    return {};
  }
  if (!it->value().is_array()) bad_input(std::string(name) + " must be an array of ids");
  std::vector<Id> out;
  for (const auto& v : it->value().as_array()) out.push_back(id_value(v, name));
  return out;
}

}  // namespace

using Handler = std::function<Response(Ctx&)>;
struct RouteInfo {
  bool auth = true;
  Handler fn;
};

struct RestApi::Impl {
  chat::ChatService& chat;
  chat::Store& store;
  const auth::JwtCodec& jwt;
  KnownUsers& known;
  RateLimiter& limiter;
  Metrics& metrics;
  std::vector<std::function<std::string()>> readiness;  // add_readiness_check
  std::function<bool(Id)> presence_online;               // attach_presence
  const LoadGauge* load;
  LoginGuard* login_guard;
  chat::UploadService* uploads = nullptr;
  Router<RouteInfo> router;

  Impl(chat::ChatService& c, chat::Store& s, const auth::JwtCodec& j, KnownUsers& k, RateLimiter& l, Metrics& m,
       const LoadGauge* g, LoginGuard* lg)
      : chat(c), store(s), jwt(j), known(k), limiter(l), metrics(m), load(g), login_guard(lg) {
    add_routes();
  }

  // A valid token of this database, of a user that exists in it, at the user's current token
  // version (else 401 everywhere).
  std::optional<Id> authenticate(std::string_view token) const {
    auto claims = jwt.verify(token, now_ms());
    if (!claims || !known.token_valid(claims->user, claims->version)) return std::nullopt;
    return claims->user;
  }

  // A matched route: authenticate, rate-limit, run.
  Response dispatch(const Router<RouteInfo>::Route& route, Ctx& c) {
    std::string limiter_key = "ip:" + c.req.remote_ip;
    if (route.handler.auth) {
      std::optional<Id> uid;
      if (auto token = bearer_token(c.req.authorization)) uid = authenticate(*token);
      if (uid) {
        c.user = *uid;
        limiter_key = "u:" + format_id(*uid);
      }
    }
    // Requests without a valid token are metered per IP before they are refused.
    if (route.pattern.rfind("/api/", 0) == 0) {
      if (int wait = limiter.acquire(limiter_key)) {
        return rate_limited("too many requests", wait);
      }
    }
    if (route.handler.auth && c.user == 0)
      throw Error(ErrorKind::Unauthorized, "unauthorized",
                  c.req.authorization.empty() ? "missing bearer token" : "invalid or expired token");
    return run_route(route, c);
  }

  // Every room route answers 404 (unknown room) and 403 (not a member) before any other
  // complaint about the request: a bad body or parameter is reported only to members.
  Response run_route(const Router<RouteInfo>::Route& route, Ctx& c) {
    try {
      return route.handler.fn(c);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::BadInput || route.pattern.rfind("/api/chatrooms/:id", 0) != 0) throw;
      if (auto room = parse_id(c.params.at(0))) chat.require_membership(c.user, *room);
      throw;
    }
  }

  // The routing table: one short handler per route, grouped by resource below.
  void add_routes() {
    using H = Response (Impl::*)(Ctx&);
    auto pub = [this](const char* m, const char* p, H h) { router.add(m, p, RouteInfo{false, bind(h)}); };
    auto api = [this](const char* m, const char* p, H h) { router.add(m, p, RouteInfo{true, bind(h)}); };

    pub("GET", "/healthz", &Impl::healthz);
    pub("GET", "/readyz", &Impl::readyz);
    pub("GET", "/metrics", &Impl::metrics_text);

    pub("POST", "/api/auth/register", &Impl::register_user);
    pub("POST", "/api/auth/login", &Impl::login);
    api("POST", "/api/auth/logout", &Impl::logout);
    api("POST", "/api/auth/password", &Impl::change_password);
    api("GET", "/api/me", &Impl::me);
    api("GET", "/api/users", &Impl::search_users);
    api("GET", "/api/users/:id/presence", &Impl::user_presence);

    api("POST", "/api/chatrooms", &Impl::create_room);
    api("GET", "/api/chatrooms", &Impl::list_rooms);
    api("GET", "/api/chatrooms/:id", &Impl::get_room);
    api("POST", "/api/chatrooms/:id/members", &Impl::add_member);
    api("DELETE", "/api/chatrooms/:id/members/:user_id", &Impl::remove_member);

    api("POST", "/api/chatrooms/:id/messages", &Impl::send_message);
    api("GET", "/api/chatrooms/:id/messages", &Impl::history);
    api("GET", "/api/messages/unread-counts", &Impl::unread_counts);
    api("GET", "/api/messages/latest", &Impl::latest);
    api("POST", "/api/messages/read", &Impl::read_bulk);
    api("GET", "/api/messages/:id", &Impl::get_message);
    api("POST", "/api/messages/:id/read", &Impl::read_one);
    api("POST", "/api/chatrooms/:id/mark-all-read", &Impl::mark_all_read);
    api("GET", "/api/chatrooms/:id/first-unread", &Impl::first_unread);
    api("GET", "/api/messages/:id/read-by-who", &Impl::read_by_who);
    api("PUT", "/api/messages/:id/reactions/:emoji", &Impl::add_reaction);
    api("DELETE", "/api/messages/:id/reactions/:emoji", &Impl::remove_reaction);
    api("POST", "/api/uploads", &Impl::create_upload);
  }
  Handler bind(Response (Impl::*h)(Ctx&)) {
    return [this, h](Ctx& c) { return (this->*h)(c); };
  }

  // Probes.
  Response healthz(Ctx&) { return json_response(200, json::object{{"status", "ok"}}); }
  Response readyz(Ctx&) {
    std::string reason = store.healthy() ? "" : "storage unavailable";
    for (const auto& check : readiness)
      if (std::string p = check(); !p.empty()) reason += (reason.empty() ? "" : "; ") + p;
    if (reason.empty()) return json_response(200, json::object{{"status", "ready"}});
    return json_response(503, json::object{{"status", "unavailable"}, {"reason", reason}});
  }
  Response metrics_text(Ctx&) {
    Response r;
    r.body = metrics.render();
    r.content_type = "text/plain; version=0.0.4";
    return r;
  }

  // Auth and users.
  Response auth_answer(int status, const chat::User& u, std::int64_t token_version) {
    return json_response(status,
                         json::object{{"user", to_json(u)}, {"token", jwt.issue(u.id, token_version, now_ms())}});
  }
  static Response no_content() {
    Response r;
    r.status = 204;
    return r;
  }
  Response register_user(Ctx& c) {
    auto b = c.body();
    std::string username = chat::normalize_username(field_string(b, "username"));
    std::string password = field_string(b, "password");
    chat::check_password(password);
    auto user = chat.create_user(username, auth::hash_password(password));
    return auth_answer(201, user, 0);  // a new user's first token version
  }
  Response login(Ctx& c) {
    auto b = c.body();
    std::string username = field_string(b, "username");
    std::string password = field_string(b, "password");
    // The guard's key: the name as it would be stored (lower case), at most 64 bytes of it.
    std::string key = username.substr(0, 64);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (login_guard) {
      if (int wait = login_guard->check(key, c.req.remote_ip)) {
        return rate_limited("too many failed logins; retry later", wait);
      }
    }
    auto found = chat.user_auth(username);
    bool ok = auth::verify_password(found ? found->password_hash : auth::dummy_password_hash(), password);
    if (!found || !ok) {
      if (login_guard) login_guard->failed(key, c.req.remote_ip);
      throw Error(ErrorKind::Unauthorized, "invalid_credentials", "wrong username or password");
    }
    return auth_answer(200, found->user, found->token_version);
  }
  // Revocation: every token of the caller issued until now stops working. The cache learns
  // the new version here at once (and from the bus event, as every instance does).
  Response logout(Ctx& c) {
    known.raise(c.user, chat.revoke_tokens(c.user));
    return no_content();
  }
  // A wrong old password counts as a failed login of that user (a stolen token must not be a
  // way to guess the password at the REST rate).
  Response change_password(Ctx& c) {
    auto b = c.body();
    std::string old_password = field_string(b, "old_password");
    std::string new_password = field_string(b, "new_password");
    chat::check_password(new_password);  // the rules of register: 400 before any hashing
    auto me = chat.caller_auth(c.user);
    if (login_guard) {
      if (int wait = login_guard->check(me.user.username, c.req.remote_ip)) {
        return rate_limited("too many failed password checks; retry later", wait);
      }
    }
    if (!auth::verify_password(me.password_hash, old_password)) {
      if (login_guard) login_guard->failed(me.user.username, c.req.remote_ip);
      forbidden("old_password is wrong");
    }
    known.raise(c.user, chat.change_password(c.user, me.password_hash, auth::hash_password(new_password)));
    return no_content();
  }
  Response me(Ctx& c) { return json_response(200, to_json(chat.get_user(c.user))); }
  Response search_users(Ctx& c) {
    int limit = c.query_int("limit", chat::kDefaultUserSearchLimit, 1, chat::kMaxUserSearchLimit);
    auto users = chat.search_users(c.query("query").value_or(""), limit);
    return json_response(200, json::object{{"users", to_json(users)}});
  }
  Response user_presence(Ctx& c) {
    Id user = c.param_id(0);
    auto last_seen = chat.presence_of(c.user, user);  // 404 / 403 first
    bool online = presence_online && presence_online(user);
    return json_response(200, presence_json(user, online, last_seen));
  }

  // Rooms and members.
  Response create_room(Ctx& c) {
    auto b = c.body();
    auto type = optional_string(b, "type").value_or("group");
    auto members = id_array(b, "member_ids", type == "direct");
    if (type == "direct") {
      if (members.size() != 1) bad_input("a direct room takes exactly one member_ids entry");
      auto [view, created] = chat.create_direct(c.user, members[0]);
      return json_response(created ? 201 : 200, to_json(view));
    }
    if (type != "group") bad_input("type must be \"group\" or \"direct\"");
    auto name = optional_string(b, "name");
    if (!name) bad_input("name must be a string");
    return json_response(201, to_json(chat.create_group(c.user, *name, members)));
  }
  Response list_rooms(Ctx& c) {
    json::array rooms;
    for (const auto& r : chat.list_rooms(c.user)) rooms.push_back(to_json(r));
    return json_response(200, json::object{{"chatrooms", std::move(rooms)}});
  }
  // The room, and (here only) every member's read and delivered watermarks.
  Response get_room(Ctx& c) {
    chat::RoomView v = chat.get_room(c.user, c.param_id(0));
    json::object o = to_json(v);
    json::array marks;
    for (const auto& m : v.watermarks)
      marks.push_back(json::object{{"user_id", format_id(m.user)}, {"read_seq", m.read_seq}, {"delivered_seq", m.delivered_seq}});
    o["watermarks"] = std::move(marks);
    return json_response(200, o);
  }
  Response add_member(Ctx& c) {
    Id room = c.param_id(0);
    auto b = c.body();
    auto it = b.find("user_id");
    if (it == b.end()) bad_input("user_id must be an id string");
    Id user = id_value(it->value(), "user_id");
    return json_response(200, to_json(chat.add_member(c.user, room, user).room));
  }
  Response remove_member(Ctx& c) {
    Id room = c.param_id(0);
    Id user = c.param_id(1);
    chat.remove_member(c.user, room, user);
    return no_content();
  }

  // Messages.
  Response send_message(Ctx& c) {
    Id room = c.param_id(0);
    auto b = c.body();
    std::string content = field_string(b, "content");
    auto cmid = optional_string(b, "client_msg_id");
    // The server is behind on fan-out: shed the new send here rather than let queues grow.
    if (load && load->overloaded())
      throw Error(ErrorKind::Unavailable, "unavailable", "the server is busy; retry shortly");
    auto attachments = id_array(b, "attachment_ids", false);
    auto res = chat.send(c.user, room, content, cmid, {}, attachments);
    if (res.created) metrics.message_stored();
    return json_response(res.created ? 201 : 200, to_json(res.message));
  }
  Response history(Ctx& c) {
    Id room = c.param_id(0);
    int limit = c.query_int("limit", chat::kDefaultHistoryLimit, 1, chat::kMaxHistoryLimit);
    auto page = chat.history(c.user, room, c.query_seq("after_seq"), c.query_seq("before_seq"), limit);
    json::array msgs;
    for (const auto& m : page.messages) msgs.push_back(to_json(m));
    return json_response(200, json::object{{"messages", std::move(msgs)}, {"has_more", page.has_more}});
  }
  Response create_upload(Ctx& c) {
    if (!uploads) not_found("uploads are not enabled");
    auto b = c.body();
    std::string filename = field_string(b, "filename");
    std::string content_type = field_string(b, "content_type");
    auto it = b.find("size");
    if (it == b.end() || !(it->value().is_int64() || it->value().is_uint64())) bad_input("size must be an integer");
    std::int64_t size = it->value().is_int64() ? it->value().get_int64() : INT64_MAX;
    auto u = uploads->create(c.user, filename, content_type, size, UploadTransfers::new_file_key());
    return json_response(201, to_json(u));
  }
  Response get_message(Ctx& c) { return json_response(200, to_json(chat.get_message(c.user, c.param_id(0)))); }
  Response latest(Ctx& c) {
    json::array out;
    for (const auto& [room, m] : chat.latest(c.user))
      out.push_back(json::object{{"room_id", format_id(room)}, {"message", to_json(m)}});
    return json_response(200, json::object{{"latest", std::move(out)}});
  }

  // Read state.
  Response unread_counts(Ctx& c) {
    auto u = chat.unread_counts(c.user);
    json::object counts;
    for (auto [room, n] : u.rooms) counts[format_id(room)] = n;
    return json_response(200, json::object{{"unread_counts", std::move(counts)}, {"total", u.total}});
  }
  Response read_bulk(Ctx& c) {
    auto b = c.body();
    auto ids = id_array(b, "message_ids", true);
    json::array rooms;
    for (const auto& r : chat.read_bulk(c.user, ids)) rooms.push_back(to_json(r));
    return json_response(200, json::object{{"rooms", std::move(rooms)}});
  }
  Response read_one(Ctx& c) { return json_response(200, to_json(chat.read_one(c.user, c.param_id(0)))); }
  Response mark_all_read(Ctx& c) {
    auto r = chat.mark_all_read(c.user, c.param_id(0));
    auto o = to_json(r);
    o["marked"] = r.marked;
    return json_response(200, o);
  }
  Response first_unread(Ctx& c) {
    auto f = chat.first_unread(c.user, c.param_id(0));
    return json_response(200, json::object{{"message", to_json(f.message)}, {"unread_count", f.unread_count}});
  }
  // Reactions: the emoji is the path segment, percent-decoded by the URL parser.
  Response react(Ctx& c, bool add) {
    Id message = c.param_id(0);
    auto reactions = chat.react(c.user, message, c.params.at(1), add);
    return json_response(200, json::object{{"message_id", format_id(message)}, {"reactions", to_json(reactions)}});
  }
  Response add_reaction(Ctx& c) { return react(c, true); }
  Response remove_reaction(Ctx& c) { return react(c, false); }
  Response read_by_who(Ctx& c) {
    auto r = chat.read_by_who(c.user, c.param_id(0));
    json::array read_by, unread_by;
    for (const auto& rd : r.read_by)
      read_by.push_back(json::object{
          {"user_id", format_id(rd.user.id)}, {"username", rd.user.username}, {"read_at", format_rfc3339(rd.read_at)}});
    for (const auto& u : r.unread_by)
      unread_by.push_back(json::object{{"user_id", format_id(u.id)}, {"username", u.username}});
    json::array delivered_to;
    for (const auto& d : r.delivered_to)
      delivered_to.push_back(json::object{{"user_id", format_id(d.user.id)},
                                          {"username", d.user.username},
                                          {"delivered_at", format_rfc3339(d.delivered_at)}});
    return json_response(200, json::object{{"message_id", format_id(r.message.id)},
                                           {"room_id", format_id(r.message.room_id)},
                                           {"read_by", std::move(read_by)},
                                           {"unread_by", std::move(unread_by)},
                                           {"delivered_to", std::move(delivered_to)},
                                           {"read_count", r.read_by.size()},
                                           {"member_count", r.member_count}});
  }
};

RestApi::RestApi(chat::ChatService& chat, chat::Store& store, const auth::JwtCodec& jwt, KnownUsers& known,
                 RateLimiter& limiter, Metrics& metrics, const LoadGauge* load, LoginGuard* login_guard)
    : impl_(std::make_unique<Impl>(chat, store, jwt, known, limiter, metrics, load, login_guard)) {}
RestApi::~RestApi() = default;

std::optional<Id> RestApi::authenticate(std::string_view token) const { return impl_->authenticate(token); }
void RestApi::set_uploads(chat::UploadService* uploads) { impl_->uploads = uploads; }

std::optional<Response> RestApi::rate_limit(const Request& head) {
  std::string key = "ip:" + head.remote_ip;
  if (auto token = bearer_token(head.authorization))
    if (auto uid = impl_->authenticate(*token)) key = "u:" + format_id(*uid);
  if (int wait = impl_->limiter.acquire(key)) return rate_limited("too many requests", wait);
  return std::nullopt;
}

void RestApi::observe_streamed(const std::string& method, int status, double seconds) {
  impl_->metrics.observe_request("/api/uploads/:id", method_label(method), status, seconds);
}

void RestApi::attach_presence(std::function<bool(Id)> online) { impl_->presence_online = std::move(online); }

void RestApi::add_readiness_check(std::function<std::string()> problem) {
  impl_->readiness.push_back(std::move(problem));
}

void RestApi::observe_refused(int status) { impl_->metrics.observe_request("unparsed", "OTHER", status, 0); }

Response RestApi::handle(const Request& req) {
  auto start = std::chrono::steady_clock::now();
  std::string route_label = "unmatched";
  Response resp;
  try {
    auto url = boost::urls::parse_origin_form(req.target);
    if (!url) throw Error(ErrorKind::BadInput, "invalid_request", "malformed request target");
    std::vector<std::string> path;
    for (auto seg : url->segments()) path.push_back(seg);
    auto m = impl_->router.match(req.method, path);
    if (!m.route) {
      if (m.method_mismatch)
        resp = error_response(405, "method_not_allowed", "method not allowed on this path");
      else
        resp = error_response(404, "not_found", "no such route");
    } else {
      route_label = m.route->pattern;
      Ctx ctx{req, std::move(m.params), {}, 0};
      for (auto p : url->params()) ctx.query_params[p.key] = p.has_value ? p.value : std::string();
      resp = impl_->dispatch(*m.route, ctx);
    }
  } catch (const Error& e) {
    resp = error_response(status_of(e.kind()), e.code(), e.what());
    if (e.kind() == ErrorKind::Unavailable) resp.headers.emplace_back("Retry-After", "1");
  } catch (const std::exception& e) {
    spdlog::error("unexpected error on {} {}: {}", req.method, route_label, e.what());
    resp = error_response(500, "internal", "internal error");
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  impl_->metrics.observe_request(route_label, method_label(req.method), resp.status, secs);
  return resp;
}

}  // namespace parley::api
