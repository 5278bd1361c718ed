// net/: sockets — the listener, HTTP sessions (and the WebSocket upgrade), timeouts, body
// limits and shutdown. Turns Beast requests into api::Request and back; no domain logic.
// Beast stays inside net/*.cpp: this header names no Beast type.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/client_ip.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace parley::api {
class RestApi;
class UploadTransfers;
}  // namespace parley::api

namespace parley::net {
struct WsDeps;
class StaticSite;

// Defaults are those of `parley serve`; app/config.h states the bounds of each.
struct HttpOptions {
  std::size_t max_body_bytes = 1024 * 1024;          // larger → 413
  std::size_t max_header_bytes = 16 * 1024;          // larger → 431
  std::chrono::milliseconds idle_timeout{60000};     // keep-alive: wait for a request's first byte
  std::chrono::milliseconds request_timeout{30000};  // from a request's first byte to its last
  std::chrono::milliseconds header_timeout{10000};   // from a request's first byte to its header's end
  // Concurrent connections per client IP (0: no cap); one more is answered 429 and closed.
  // A direct client is counted from accept; a client behind a trusted proxy by its WebSocket
  // connections (its requests share the proxy's connections).
  std::size_t max_connections_per_ip = 4096;
  api::TrustedProxies trusted_proxies;  // whose X-Forwarded-For names the client
  // PUT /api/uploads/:id (up to 25 MiB, streamed): the body must keep arriving — no read may
  // wait longer than request_timeout — and all of it must arrive within upload_timeout.
  std::chrono::milliseconds upload_timeout{600000};
  // The built-in web client's files (GET/HEAD of a path it holds), or null: no static files.
  std::shared_ptr<const StaticSite> site;
};

class HttpServer {
 public:
  // ws may be null: then upgrades are answered 404.
  HttpServer(boost::asio::io_context& ioc, boost::asio::thread_pool& pool, api::RestApi& api, HttpOptions opts,
             WsDeps* ws = nullptr);
  ~HttpServer();
  // Binds and listens; returns the bound "HOST:PORT" (the real port when 0 was asked for).
  // Throws std::runtime_error when the address cannot be bound.
  std::string listen(const std::string& host, unsigned short port);
  // Streams PUT and GET /api/uploads/:id through uploads (else they are routed to the API,
  // which does not know them: 404). Call before start().
  void set_uploads(api::UploadTransfers* uploads);
  // Starts accepting connections (on the io_context's threads).
  void start();
  // Stops accepting, closes idle connections and every WebSocket (1001, after flushing its
  // queue); requests in flight finish.
  void stop();
  // Closes every socket at once (the last step of shutdown, after the drain deadline).
  void abort_all();
  // Open connections (for shutdown: exit once it reaches 0).
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::net
