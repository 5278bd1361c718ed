#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/cooldown.h"
#include "api/http_types.h"
#include "api/known_users.h"
#include "auth/jwt.h"
#include "chat/service.h"

namespace parley::api {

// A WebSocket upgrade request, as far as the decision to accept it needs.
struct UpgradeRequest {
  std::string target;         // path and query
  std::string authorization;  // "Bearer …" or empty
  std::string origin;         // empty when absent
  std::string host;
};

struct Admission {
  bool accepted = false;
  Response refusal;  // when not accepted: the HTTP answer (401/403/404/429/400)
  bool sidebar = false;
  Id user = 0;
  Id room = 0;                         // chatroom sockets
  std::optional<chat::Seq> after_seq;  // chatroom resume
  std::optional<std::int64_t> token_version;  // the token's (none: the insecure sidebar's user_id)
  std::string reason;                  // refusal reason for metrics/logs
};

struct WsGateOptions {
  std::vector<std::string> allowed_origins;
  bool allow_insecure_sidebar = false;
  int cooldown_ms = 500;
  std::size_t cooldown_max_keys = 100000;  // bound of the default (local) cooldown table (LRU)
};

// Decides every WebSocket upgrade before it happens (CONTRACT.md "WebSocket"): endpoint,
// Origin allowlist, token or insecure user_id, room membership, per-user connect cooldown.
// Blocking (storage): call it off the IO threads. known: the process's token-version cache
// (shared with REST). cooldown: where the cooldown is kept (SharedCooldown with several
// instances); none → a LocalCooldown of opts.cooldown_max_keys of the gate's own.
class WsGate {
 public:
  WsGate(chat::ChatService& chat, const auth::JwtCodec& jwt, KnownUsers& known, WsGateOptions opts,
         CooldownStore* cooldown = nullptr);
  // A storage fault while deciding → 503 `unavailable` with Retry-After (reason "unavailable").
  Admission admit(const UpgradeRequest& req);
  // admit() on the IO thread, when it needs no storage and no shared cooldown store: a sidebar
  // whose token's version the cache holds (KnownUsers::token_valid_cached), and every refusal
  // found before a storage read. nullopt: ask admit() off the IO threads. Never blocks; the
  // same decision admit() makes (nothing is recorded when it returns nullopt).
  std::optional<Admission> try_admit(const UpgradeRequest& req);
  // Never blocks: whether the admitted connection's token has been revoked since (a revocation
  // that reached the hub before the connection registered there).
  bool revoked(const Admission& a) const {
    return a.token_version && known_.known_revoked(a.user, *a.token_version);
  }

 private:
  struct WouldBlock {};                                 // thrown by decide() when !may_block
  Admission decide(const UpgradeRequest& req, bool may_block);
  bool cooldown_passed(const std::string& key);

  chat::ChatService& chat_;
  const auth::JwtCodec& jwt_;
  KnownUsers& known_;
  WsGateOptions opts_;
  std::unique_ptr<LocalCooldown> own_cooldown_;  // when none was given
  CooldownStore& cooldown_;                      // per user, endpoint and room
};

}  // namespace parley::api
