#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/fanout.h"
#include "api/http_types.h"
#include "api/login_guard.h"
#include "api/known_users.h"
#include "api/metrics.h"
#include "api/rate_limiter.h"
#include "auth/jwt.h"
#include "chat/service.h"
#include "chat/uploads.h"

namespace parley::api {

// The REST API of CONTRACT.md. handle() is blocking (storage, password hashing): the server
// calls it on the storage pool, never on an IO thread. It never throws: every failure is an
// HTTP answer with the JSON error shape.
class RestApi {
 public:
  // load (optional): while it says the server is behind, new sends are refused with 503.
  // known: the process's token-version cache (shared with the WebSocket gate).
  // login_guard (optional): failed logins per username and per IP (429 once spent).
  RestApi(chat::ChatService& chat, chat::Store& store, const auth::JwtCodec& jwt, KnownUsers& known,
          RateLimiter& limiter, Metrics& metrics, const LoadGauge* load = nullptr, LoginGuard* login_guard = nullptr);
  ~RestApi();
  Response handle(const Request& req);

  // Another condition of /readyz (the bus): problem() returns why the instance is not ready,
  // "" while it is. Call before serving; problem() must not block.
  void add_readiness_check(std::function<std::string()> problem);
  // Where GET /api/users/:id/presence reads the status announced (chat::PresenceLedger::online;
  // may block). Without it every user is offline. Call before serving.
  void attach_presence(std::function<bool(Id)> online);

  // Counts a request the HTTP layer refused before it could be routed (malformed, body or
  // headers too large) under the route label "unparsed".
  void observe_refused(int status);

  // For the requests the server streams itself (PUT and GET /api/uploads/:id): the API's rate
  // limit (429 when the caller — its token's user, else its IP — is over it) and the request
  // metrics (route label /api/uploads/:id).
  std::optional<Response> rate_limit(const Request& head);
  void observe_streamed(const std::string& method, int status, double seconds);

  // Enables POST /api/uploads (the other upload routes are streamed: api/upload_transfers.h).
  void set_uploads(chat::UploadService* uploads);

  // The user id of a valid, unrevoked token of a user of this database, or nullopt.
  std::optional<Id> authenticate(std::string_view token) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The one JSON error shape.
Response error_response(int status, std::string_view code, std::string_view message);

}  // namespace parley::api
