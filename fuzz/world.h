// The server's domain wiring for the fuzz targets, as src/app/main.cpp builds it, on a fresh
// in-memory store per input (so that a crash file reproduces on its own): ChatService,
// JwtCodec, KnownUsers, LoginGuard, RestApi, WsGate, WsDispatcher (with a typing desk), with two users and two rooms to act on:
//   user 1 "alice", user 2 "bob", user 3 "carol";
//   room 1: group by alice with bob; room 2: group by carol alone (alice is not a member).
// Inputs name live tokens with the placeholders $TOKEN_A / $TOKEN_B / $TOKEN_C, replaced by
// fresh tokens of alice / bob / carol before the input is used (a token written into a
// corpus file would expire).
#pragma once
#include <boost/json.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "api/fanout.h"
#include "api/metrics.h"
#include "api/rate_limiter.h"
#include "api/rest.h"
#include "api/ws_gate.h"
#include "api/ws_service.h"
#include "auth/jwt.h"
#include "chat/service.h"
#include "common/time.h"
#include "common/utf8.h"
#include "fuzz_check.h"
#include "storage/open_store.h"

namespace parley::fuzz {

// The typing desk as the hub is to the dispatcher, without the hub: it does not know the
// sidebar's rooms (so their membership is read from storage, as while a tracker loads) and
// takes everything else.
struct TypingDeskStub : api::TypingDesk {
  Verdict typing(const api::WsIdentity& who, Id, bool, bool member_checked) override {
    return member_checked || who.room != 0 ? Verdict::Sent : Verdict::Unknown;
  }
};

struct World {
  std::unique_ptr<chat::Store> store = open();
  chat::ChatService chat{*store};
  auth::JwtCodec jwt{kKey, 3600, store->database_id()};
  api::KnownUsers known{chat};
  api::RateLimiter limiter{0, 0, 1000};  // off, as the e2e tests run it
  api::LoginGuard login_guard{10, 100};  // the server's defaults
  api::Metrics metrics;
  api::LoadGauge load{256};
  api::RestApi rest{chat, *store, jwt, known, limiter, metrics, &load, &login_guard};
  api::WsDispatcher ws{chat, metrics, load};
  TypingDeskStub typing_desk;
  int attached = (ws.attach_typing(&typing_desk), 0);
  api::WsGate gate{chat, jwt, known, api::WsGateOptions{{}, false, 0, 1000}};
  Id alice = chat.create_user("alice", "not-a-hash").id;
  Id bob = chat.create_user("bob", "not-a-hash").id;
  Id carol = chat.create_user("carol", "not-a-hash").id;
  Id room = chat.create_group(alice, "general", {bob}).room.id;
  Id other_room = chat.create_group(carol, "private", {}).room.id;

  static std::unique_ptr<chat::Store> open() {
    storage::StoreConfig c;
    c.db_url = "sqlite::memory:";
    c.threads = 1;
    return storage::open_store(c);
  }

  // The input with each $TOKEN_X placeholder replaced by a live token.
  std::string with_tokens(std::string_view in) const {
    std::string out(in);
    const std::pair<const char*, Id> subs[] = {{"$TOKEN_A", alice}, {"$TOKEN_B", bob}, {"$TOKEN_C", carol}};
    for (const auto& [ph, user] : subs) {
      std::string tok;
      for (std::size_t at = out.find(ph); at != std::string::npos; at = out.find(ph, at + tok.size())) {
        if (tok.empty()) tok = jwt.issue(user, 0, now_ms());  // a new user's token version is 0
        out.replace(at, 8, tok);
      }
    }
    return out;
  }
};

// Every body and frame the server sends is valid UTF-8 JSON; an error carries
// {"error":{"code","message"}} (REST) or {"type":"error","data":{"code","message"}} (WS).
inline boost::json::value require_json(std::string_view text, const char* what) {
  if (!is_valid_utf8(text)) fail(what, "not valid UTF-8");
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) fail(what, text);
  return v;
}

inline void require_error_shape(const boost::json::value& err, std::string_view text, const char* what) {
  auto* o = err.if_object();
  if (!o) fail(what, text);
  auto* code = o->if_contains("code");
  auto* msg = o->if_contains("message");
  if (!code || !code->is_string() || code->as_string().empty() || !msg || !msg->is_string()) fail(what, text);
}

}  // namespace parley::fuzz
