#include "api/ws_gate.h"

#include "api/rest.h"

#include <boost/url/parse.hpp>

#include "common/error.h"

namespace parley::api {

WsGate::WsGate(chat::ChatService& chat, const auth::JwtCodec& jwt, KnownUsers& known, WsGateOptions opts,
               CooldownStore* cooldown)
    : chat_(chat),
      jwt_(jwt),
      known_(known),
      opts_(std::move(opts)),
      own_cooldown_(cooldown ? nullptr : std::make_unique<LocalCooldown>(opts_.cooldown_max_keys)),
      cooldown_(cooldown ? *cooldown : *own_cooldown_) {}

// Counts from the last accepted connect: a refused one does not restart the clock.
bool WsGate::cooldown_passed(const std::string& key) {
  if (opts_.cooldown_ms <= 0) return true;
  return cooldown_.pass(key, std::chrono::milliseconds(opts_.cooldown_ms));
}

std::optional<Admission> WsGate::try_admit(const UpgradeRequest& req) {
  try {
    return decide(req, false);
  } catch (const WouldBlock&) {
    return std::nullopt;
  }
}

Admission WsGate::admit(const UpgradeRequest& req) {
  try {
    return decide(req, true);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Unavailable) throw;
    Admission a;
    a.refusal = error_response(503, "unavailable", e.what());
    a.refusal.headers.emplace_back("Retry-After", "1");
    a.reason = "unavailable";
    return a;
  }
}

Admission WsGate::decide(const UpgradeRequest& req, bool may_block) {
  auto blocking = [&] {
    if (!may_block) throw WouldBlock{};
  };
  Admission a;
  auto refuse = [&](int status, const char* code, const std::string& msg, const char* reason) {
    a.accepted = false;
    a.refusal = error_response(status, code, msg);
    a.reason = reason;
    return a;
  };
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return refuse(400, "invalid_request", "malformed request target", "bad_request");
  std::string path = std::string(url->path());
  if (path == "/ws")
    a.sidebar = true;
  else if (path != "/api/ws")
    return refuse(404, "not_found", "no WebSocket endpoint here", "not_found");

  // Origin: browsers only; without an allowlist only the server's own origin.
  if (!req.origin.empty()) {
    bool ok = false;
    if (opts_.allowed_origins.empty())
      ok = req.origin == "http://" + req.host;
    else
      for (const auto& o : opts_.allowed_origins) ok = ok || o == req.origin;
    if (!ok) return refuse(403, "forbidden", "origin not allowed", "origin");
  }

  std::optional<std::string> token, user_param, room_param, after_param;
  for (auto p : url->params()) {
    std::string v = p.has_value ? std::string(p.value) : std::string();
    if (p.key == "token")
      token = v;
    else if (p.key == "user_id")
      user_param = v;
    else if (p.key == "room_id")
      room_param = v;
    else if (p.key == "after_seq")
      after_param = v;
  }
  if (!token)
    if (auto bearer = bearer_token(req.authorization)) token = std::string(*bearer);

  std::optional<Id> user;
  if (token) {
    auto claims = jwt_.verify(*token, now_ms());
    if (!claims) return refuse(401, "unauthorized", "invalid or expired token", "token");
    auto valid = known_.token_valid_cached(claims->user, claims->version);
    if (!valid) blocking();
    if (valid ? !*valid : !known_.token_valid(claims->user, claims->version))
      return refuse(401, "unauthorized", "the token was revoked or its user does not exist", "token");
    user = claims->user;
    a.token_version = claims->version;
    if (user_param && parse_id(*user_param) != user)
      return refuse(401, "unauthorized", "user_id does not match the token", "user_mismatch");
  } else if (a.sidebar && user_param && opts_.allow_insecure_sidebar) {
    user = parse_id(*user_param);
    if (user) blocking();
    if (!user || !known_.exists(*user)) return refuse(401, "unauthorized", "unknown user_id", "user_id");
  } else {
    return refuse(401, "unauthorized", "a token is required", "no_token");
  }
  a.user = *user;

  if (!a.sidebar) {
    if (!room_param) return refuse(400, "invalid_request", "room_id is required", "bad_request");
    auto room = parse_id(*room_param);
    if (!room) return refuse(400, "invalid_request", "malformed room_id", "bad_request");
    a.room = *room;
    if (after_param) {
      auto v = *after_param == "0" ? std::optional<Id>(0) : parse_id(*after_param);
      if (!v) return refuse(400, "invalid_request", "after_seq must be a non-negative integer", "bad_request");
      a.after_seq = *v;
    }
    blocking();
    try {  // refuse before the upgrade; the session reads the room's last_seq itself when it joins
      chat_.require_membership(a.user, a.room);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Unavailable) throw;
      if (e.kind() == ErrorKind::NotFound) return refuse(404, "not_found", "room not found", "room_not_found");
      return refuse(403, "forbidden", "not a member of this room", "not_member");
    }
  }

  std::string key = format_id(a.user) + (a.sidebar ? "|sidebar" : "|room|" + format_id(a.room));
  if (opts_.cooldown_ms > 0 && !own_cooldown_) blocking();  // a shared store (Redis) is asked over the network
  if (!cooldown_passed(key)) {
    refuse(429, "rate_limited", "reconnecting too fast", "cooldown");
    a.refusal.headers.emplace_back("Retry-After", "1");
    return a;
  }
  a.accepted = true;
  return a;
}

}  // namespace parley::api
