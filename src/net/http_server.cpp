#include "net/http_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <mutex>
#include <ranges>
#include <set>
#include <unordered_map>
#include <stdexcept>
#include <tuple>
#include <unistd.h>

#include "api/rest.h"
#include "api/upload_transfers.h"
#include "api/ws_gate.h"
#include "net/http_request.h"
#include "net/static_site.h"
#include "net/ws_session.h"

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

// The target for logs: every query parameter whose *decoded* name is `token` (the name the
// WebSocket gate reads, however it was percent-encoded) has its value replaced by REDACTED.
// A query that does not parse is not logged at all.
std::string redact(std::string_view target) {
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::string(target.substr(0, q)) + "?(unparsed query)";
  std::string out(target.substr(0, q));
  char sep = '?';
  for (auto p : url->encoded_params()) {
    out += sep;
    sep = '&';
    if (p.key.decode() == "token" || p.key.decode() == "sig") {
      out += std::string(p.key) + "=REDACTED";
    } else {
      out += std::string(p.key);
      if (p.has_value) out += "=" + std::string(p.value);
    }
  }
  return out;
}

http::response<http::string_body> to_beast(const api::Response& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "parley");
  if (r.status != 204) res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// A file of the built-in web client, from memory (net/static_site.h): 304 when the client's
// copy is current, the body as a view of the shared file (no copy per request), nothing for HEAD.
template <class Stream, class Request>
awaitable<std::pair<beast::error_code, unsigned>> write_static(Stream& stream, const Request& req,
                                                               const StaticSite::File& f, bool keep_alive) {
  auto inm = req[http::field::if_none_match];
  bool fresh = !inm.empty() && StaticSite::not_modified(std::string_view(inm.data(), inm.size()), f.etag);
  bool head = req.method() == http::verb::head;
  http::response<http::span_body<const char>> res{fresh ? http::status::not_modified : http::status::ok,
                                                  req.version()};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, f.content_type);
  res.set(http::field::etag, f.etag);
  res.set(http::field::cache_control, StaticSite::kCacheControl);
  res.set("Content-Security-Policy", StaticSite::kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.keep_alive(keep_alive);
  if (!fresh && !head) res.body() = boost::beast::span<const char>(f.body.data(), f.body.size());
  if (fresh) {
    // 304 carries no body and no Content-Length of its own.
  } else if (head) {
    res.content_length(f.body.size());
  } else {
    res.prepare_payload();
  }
  stream.expires_after(std::chrono::seconds(30));
  auto [ec, n] = co_await http::async_write(stream, res, tuple_awaitable);
  co_return std::pair{ec, fresh ? 304u : 200u};
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context& ioc;
  asio::thread_pool& pool;
  api::RestApi& api;
  HttpOptions opts;
  WsDeps* ws;
  api::UploadTransfers* uploads = nullptr;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};

  // How late the IO threads run a timer: the server's own lag (api::LoadGauge), measured
  // every kLagProbe; with all IO threads busy, handlers wait in the executor's queue.
  static constexpr std::chrono::milliseconds kLagProbe{20};
  awaitable<void> lag_probe() {
    asio::steady_timer t(acceptor.get_executor());
    while (!stopping) {
      auto due = std::chrono::steady_clock::now() + kLagProbe;
      t.expires_at(due);
      auto [ec] = co_await t.async_wait(tuple_awaitable);
      if (ec) co_return;
      auto late = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - due);
      ws->service.load().io_lag_ms(late.count());
    }
    ws->service.load().io_lag_ms(0);
  }

  // Keep-alive of every WebSocket session (ping, idle and write timeouts), on one timer.
  WsSweep sweep;
  awaitable<void> ws_sweep() {
    asio::steady_timer t(acceptor.get_executor());
    auto tick = WsSession::keepalive_tick(ws->opts);
    while (!stopping) {
      t.expires_after(tick);
      auto [ec] = co_await t.async_wait(tuple_awaitable);
      if (ec) co_return;
      sweep.sweep();
    }
  }

  // The write delay (WsOptions::write_delay): nullptr when off.
  std::unique_ptr<WsWriteDelay> write_delay;

  // Open connections, so that shutdown can close the idle ones. Bounded by the number of
  // open sockets (the process's file descriptor limit).
  mutable std::mutex conns_mu;
  struct Conn {
    explicit Conn(tcp::socket s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    std::atomic<bool> waiting{false};  // blocked reading the next request
    bool ws = false;                   // upgraded: the WebSocket session ends it, not the HTTP one
    std::string counted_ip;            // the key it holds in per_ip (empty: none); under conns_mu
  };
  std::set<std::shared_ptr<Conn>> conns;
  // Connections per client IP (opts.max_connections_per_ip). Bounded by the open connections:
  // an entry goes when its count reaches 0. Under conns_mu.
  std::unordered_map<std::string, std::size_t> per_ip;

  // Counts conn against ip; false (nothing counted) when ip is at the cap already.
  bool count_ip(Conn& conn, const std::string& ip) {
    if (opts.max_connections_per_ip == 0) return true;
    std::lock_guard g(conns_mu);
    auto& n = per_ip[ip];
    if (n >= opts.max_connections_per_ip) {
      if (n == 0) per_ip.erase(ip);
      return false;
    }
    ++n;
    conn.counted_ip = ip;
    return true;
  }
  void release_ip(Conn& conn) {  // under conns_mu
    if (conn.counted_ip.empty()) return;
    auto it = per_ip.find(conn.counted_ip);
    if (it != per_ip.end() && --it->second == 0) per_ip.erase(it);
    conn.counted_ip.clear();
  }

  // Forgets a connection that has ended.
  void forget(const std::shared_ptr<Conn>& conn) {
    std::lock_guard g(conns_mu);
    release_ip(*conn);
    conns.erase(conn);
  }
  static void log_unexpected(std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("connection ended by an unexpected error: {}", ex.what());
    } catch (...) {
      spdlog::error("connection ended by an unexpected error");
    }
  }

  Impl(asio::io_context& i, asio::thread_pool& p, api::RestApi& a, HttpOptions o, WsDeps* w)
      : ioc(i), pool(p), api(a), opts(o), ws(w), acceptor(i) {
    if (ws && ws->opts.write_delay.count() > 0) write_delay = std::make_unique<WsWriteDelay>(ioc, ws->opts.write_delay);
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), tuple_awaitable);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        // e.g. EMFILE: keep serving the connections we have, and retry after a pause
        // instead of spinning (one log line per pause).
        spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(tuple_awaitable);
        continue;
      }
      auto conn = std::make_shared<Conn>(std::move(socket));
      {
        std::lock_guard g(conns_mu);
        conns.insert(conn);
      }
      asio::co_spawn(conn->stream.get_executor(), session(conn),
                     [self = shared_from_this(), conn](std::exception_ptr e) {
                       log_unexpected(e);
                       if (!conn->ws) self->forget(conn);  // else its WebSocket session does
                     });
    }
  }

  // Reads and discards what the client still sends (up to a bound) so that it sees our
  // answer instead of a reset, then closes.
  awaitable<void> linger_close(beast::tcp_stream& stream,
                               std::chrono::milliseconds linger = std::chrono::milliseconds(2000)) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 16384> sink;
    std::size_t drained = 0;
    stream.expires_after(linger);
    while (drained < 8 * 1024 * 1024) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), tuple_awaitable);
      if (rec) break;
      drained += n;
    }
    stream.socket().close(ec);
  }

  // A WebSocket upgrade: decided (auth, Origin, membership, cooldown) before it happens,
  // refusals answered as plain HTTP; then the connection belongs to a WsSession.
  awaitable<void> upgrade(std::shared_ptr<Conn> conn, http::request<http::string_body> req, std::string remote_ip) {
    beast::tcp_stream& stream = conn->stream;
    api::Admission adm;
    // RFC 6455 §4.2.1: refused here with the JSON error shape (Beast would answer plain text).
    auto version = req[http::field::sec_websocket_version];
    auto key = req[http::field::sec_websocket_key];
    if (!ws) {
      adm.refusal = api::error_response(404, "not_found", "no WebSocket endpoint here");
      adm.reason = "not_found";
    } else if (version != "13") {
      adm.refusal = api::error_response(426, "upgrade_required", "Sec-WebSocket-Version must be 13");
      adm.refusal.headers.emplace_back("Sec-WebSocket-Version", "13");
      adm.reason = "bad_handshake";
    } else if (key.size() != 24 || key.substr(22) != "==") {  // base64 of 16 bytes
      adm.refusal = api::error_response(400, "invalid_request", "Sec-WebSocket-Key must be 16 bytes in base64");
      adm.reason = "bad_handshake";
    } else if (stopping) {
      adm.refusal = api::error_response(503, "unavailable", "shutting down");
      adm.reason = "shutdown";
    } else if (!counted(*conn) && !count_ip(*conn, remote_ip)) {  // a client behind a trusted proxy
      adm.refusal = too_many_connections();
      adm.reason = "too_many_connections";
    } else {
      api::UpgradeRequest ur{std::string(req.target()), std::string(req[http::field::authorization]),
                             std::string(req[http::field::origin]), std::string(req[http::field::host])};
      try {
        // Decided here when that needs no storage (a sidebar whose token version is cached:
        // no hop to the pool and back); otherwise on the pool.
        if (auto quick = ws->service.try_admit(ur))
          adm = std::move(*quick);
        else
          adm = co_await asio::co_spawn(
              pool, [this, &ur]() -> awaitable<api::Admission> { co_return ws->service.admit(ur); }, use_awaitable);
      } catch (const std::exception& e) {
        spdlog::error("ws admission failed: {}", e.what());
        adm.refusal = api::error_response(503, "unavailable", "try again");
        adm.reason = "internal";
      }
      if (adm.accepted && stopping) {  // shutdown began while the upgrade was decided
        adm.accepted = false;
        adm.refusal = api::error_response(503, "unavailable", "shutting down");
        adm.reason = "shutdown";
      }
    }
    if (!adm.accepted) {
      if (ws) ws->metrics.add("parley_ws_handshake_failures_total{reason=\"" + adm.reason + "\"}", 1);
      spdlog::info("ws refused {} {} ip={} reason={}", adm.refusal.status,
                   redact(std::string_view(req.target().data(), req.target().size())), remote_ip, adm.reason);
      auto res = to_beast(adm.refusal, req.version(), false);
      stream.expires_after(std::chrono::seconds(10));
      co_await http::async_write(stream, res, tuple_awaitable);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream.socket().close(ec);
      co_return;
    }
    // From here the connection is the WebSocket session's, on a coroutine of its own: the HTTP
    // session's frames and read buffer go as soon as this returns.
    auto session = std::make_shared<WsSession>(stream, conn, *ws, sweep, write_delay.get(), std::move(adm),
                                               api::WsService::new_connection_id(),
                                               [self = shared_from_this(), conn] { self->forget(conn); });
    conn->ws = true;
    asio::co_spawn(stream.get_executor(), session->run(std::make_unique<WsSession::Request>(std::move(req))),
                   [](std::exception_ptr e) { log_unexpected(e); });
  }

  bool counted(Conn& conn) {
    std::lock_guard g(conns_mu);
    return !conn.counted_ip.empty();
  }
  static api::Response too_many_connections() {
    auto r = api::error_response(429, "too_many_connections", "too many connections from this address");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  // PUT /api/uploads/:id, after its header: the head decides (on the pool: storage) whether
  // the body is wanted; then the body is read in chunks of 64 KiB into a buffer_body parser
  // and each chunk handed to the upload's sink on the pool (disk writes never block an IO
  // thread), so that memory holds one chunk per upload whatever its size. A refusal before
  // the body, or a body over the declared size, is answered and the connection closed; a
  // body cut off (timeout, reset) ends the connection: in every such case the partial file
  // is removed. Returns whether the connection may carry another request.
  awaitable<bool> upload_put(std::shared_ptr<Conn> conn, http::request_parser<http::string_body>& parser,
                             beast::flat_buffer& buffer, std::string remote_ip,
                             std::chrono::steady_clock::time_point first_byte) {
    beast::tcp_stream& stream = conn->stream;
    auto started = std::chrono::steady_clock::now();
    api::Request head;
    head.method = "PUT";
    head.target = std::string(parser.get().target());
    head.authorization = std::string(parser.get()[http::field::authorization]);
    head.remote_ip = remote_ip;
    std::optional<std::uint64_t> cl;
    if (auto v = parser.content_length()) cl = *v;
    unsigned version = parser.get().version();
    bool keep_alive = parser.get().keep_alive();
    bool expects_continue = beast::iequals(parser.get()[http::field::expect], "100-continue");
    auto start = co_await asio::co_spawn(
        pool,
        [this, &head, cl]() -> awaitable<api::UploadTransfers::PutStart> {
          api::UploadTransfers::PutStart s;
          s.refusal = api.rate_limit(head);
          if (!s.refusal) s = uploads->begin_put(head, cl);
          co_return s;
        },
        use_awaitable);
    std::optional<api::Response> answer = std::move(start.refusal);
    bool read_all = false, dropped = false;
    if (!answer && expects_continue) {  // curl waits for it before a large body (RFC 9110 §10.1.1)
      http::response<http::empty_body> cont{http::status::continue_, version};
      stream.expires_after(std::chrono::seconds(30));
      auto [cec, cn] = co_await http::async_write(stream, cont, tuple_awaitable);
      if (cec) {
        co_await asio::co_spawn(
            pool, [&start]() -> awaitable<void> { start.sink.reset(); co_return; }, use_awaitable);
        co_return false;
      }
    }
    if (!answer) {
      http::request_parser<http::buffer_body> bp{std::move(parser)};
      bp.body_limit(static_cast<std::uint64_t>(start.sink->size()));
      std::vector<char> chunk(64 * 1024);
      auto deadline = first_byte + opts.upload_timeout;
      while (!bp.is_done()) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
          dropped = true;
          break;
        }
        stream.expires_after(std::min<std::chrono::steady_clock::duration>(opts.request_timeout, deadline - now));
        bp.get().body().data = chunk.data();
        bp.get().body().size = chunk.size();
        auto [ec, n] = co_await http::async_read_some(stream, buffer, bp, tuple_awaitable);
        if (ec == http::error::need_buffer) ec = {};
        std::size_t got = chunk.size() - bp.get().body().size;
        if (got) {
          auto refused = co_await asio::co_spawn(
              pool,
              [&start, &chunk, got]() -> awaitable<std::optional<api::Response>> {
                co_return start.sink->write(chunk.data(), got);
              },
              use_awaitable);
          if (refused) {
            answer = std::move(refused);
            break;
          }
        }
        if (ec == http::error::body_limit) {
          answer = api::error_response(400, "invalid_request", "the body is larger than the upload's size");
          break;
        }
        if (ec == beast::error::timeout || ec == asio::error::eof || ec == asio::error::connection_reset ||
            ec == asio::error::operation_aborted || ec == http::error::partial_message) {
          dropped = true;
          break;
        }
        if (ec) {
          answer = api::error_response(400, "invalid_request", "malformed HTTP request");
          break;
        }
      }
      if (!answer && !dropped) {
        answer = co_await asio::co_spawn(
            pool, [&start]() -> awaitable<api::Response> { co_return start.sink->finish(); }, use_awaitable);
        read_all = true;
      }
      co_await asio::co_spawn(
          pool, [&start]() -> awaitable<void> { start.sink.reset(); co_return; }, use_awaitable);  // unlink
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    api.observe_streamed("PUT", dropped ? 408 : answer->status, secs);
    if (dropped) {
      spdlog::info("http PUT {} dropped: the body stopped ip={}", redact(head.target), remote_ip);
      beast::error_code ec;
      stream.socket().close(ec);
      co_return false;
    }
    bool again = read_all && keep_alive && !stopping;
    auto res = to_beast(*answer, version, again);
    stream.expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
    spdlog::info("http PUT {} {} {:.1f}ms ip={}", redact(head.target), answer->status,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(), remote_ip);
    if (wec) co_return false;
    if (!again) {
      co_await linger_close(stream);
      co_return false;
    }
    co_return true;
  }

  // GET /api/uploads/:id: the file is read in chunks of 64 KiB on the pool and written as it
  // is read (buffer_body), never whole in memory. Returns whether the connection may go on.
  awaitable<bool> upload_get(beast::tcp_stream& stream, const api::Request& r, unsigned version, bool keep_alive) {
    auto d = co_await asio::co_spawn(
        pool,
        [this, &r]() -> awaitable<api::UploadTransfers::Download> {
          api::UploadTransfers::Download dl;
          dl.refusal = api.rate_limit(r);
          if (!dl.refusal) dl = uploads->begin_download(r);
          co_return dl;
        },
        use_awaitable);
    api.observe_streamed("GET", d.refusal ? d.refusal->status : 200, 0);
    if (d.refusal) {
      auto res = to_beast(*d.refusal, version, keep_alive);
      stream.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
      co_return !wec;
    }
    http::response<http::buffer_body> res{http::status::ok, version};
    res.set(http::field::server, "parley");
    for (const auto& [k, v] : d.headers) res.set(k, v);
    res.content_length(static_cast<std::uint64_t>(d.size));
    res.keep_alive(keep_alive);
    res.body().data = nullptr;
    res.body().more = true;
    http::response_serializer<http::buffer_body> sr{res};
    stream.expires_after(std::chrono::seconds(30));
    auto [hec, hn] = co_await http::async_write_header(stream, sr, tuple_awaitable);
    if (hec) co_return false;
    std::vector<char> buf(64 * 1024);
    std::int64_t off = 0;
    while (off < d.size) {
      std::size_t want = static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(buf.size()), d.size - off));
      auto n = co_await asio::co_spawn(
          pool, [&d, &buf, want, off]() -> awaitable<ssize_t> { co_return ::pread(d.file->fd, buf.data(), want, off); },
          use_awaitable);
      if (n <= 0) co_return false;  // the file is shorter than its record: the promised length cannot be kept
      res.body().data = buf.data();
      res.body().size = static_cast<std::size_t>(n);
      res.body().more = off + n < d.size;
      stream.expires_after(std::chrono::seconds(30));  // a reader that stops reading is cut
      auto [wec, wn] = co_await http::async_write(stream, sr, tuple_awaitable);
      if (wec == http::error::need_buffer) wec = {};
      if (wec) co_return false;
      off += n;
    }
    if (!sr.is_done()) {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
      auto [wec, wn] = co_await http::async_write(stream, sr, tuple_awaitable);
      if (wec == http::error::need_buffer) wec = {};
      if (wec) co_return false;
    }
    co_return true;
  }

  awaitable<void> session(std::shared_ptr<Conn> conn) {
    beast::tcp_stream& stream = conn->stream;
    beast::flat_buffer buffer;
    beast::error_code ec;
    std::string peer_ip;
    {
      auto ep = stream.socket().remote_endpoint(ec);
      if (!ec) peer_ip = ep.address().to_string();
    }
    auto peer = api::IpAddress::parse(peer_ip);
    bool via_proxy = peer && opts.trusted_proxies.contains(*peer);
    if (peer) peer_ip = peer->to_string();  // IPv4-mapped IPv6 → IPv4, as in X-Forwarded-For
    // A direct client over its cap gets a 429 (and a short linger so that it can read it).
    if (!via_proxy && !count_ip(*conn, peer_ip)) {
      api.observe_refused(429);
      auto res = to_beast(too_many_connections(), 11, false);
      stream.expires_after(std::chrono::seconds(2));
      co_await http::async_write(stream, res, tuple_awaitable);
      co_await linger_close(stream, std::chrono::milliseconds(500));
      co_return;
    }
    // Behind a trusted proxy the client is named by X-Forwarded-For (every such header, in
    // order); per request, since a proxy's keep-alive connection carries many clients.
    auto client_ip = [&](const http::request<http::string_body>& req) {
      if (!via_proxy) return peer_ip;
      std::string xff;
      auto [from, to] = req.equal_range("X-Forwarded-For");
      for (const auto& f : std::ranges::subrange(from, to)) {
        if (!xff.empty()) xff += ',';
        xff.append(f.value().data(), f.value().size());  // bounded by max_header_bytes
      }
      return opts.trusted_proxies.client_ip(peer_ip, xff);
    };
    for (;;) {
      if (stopping) break;
      http::request_parser<http::string_body> parser;
      // No body limit while the header is read: an upload's Content-Length may exceed the API's
      // body limit; every other request's is checked against it once the header is in.
      parser.body_limit(boost::none);
      parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
      stream.expires_after(opts.idle_timeout);
      if (buffer.size() == 0) {
        // Idle between requests: only here may shutdown interrupt the connection. Once a
        // request's first byte has arrived, the request is in flight and gets its answer.
        conn->waiting = true;
        if (stopping) break;
        auto [fec, fn] = co_await stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
        conn->waiting = false;
        if (fec) break;
        buffer.commit(fn);
      }
      // A slow sender gets header_timeout for the header and request_timeout for all of it.
      auto first_byte = std::chrono::steady_clock::now();
      stream.expires_after(std::min(opts.header_timeout, opts.request_timeout));
      // The header first, checked on its raw bytes (RFC 9112 framing: api::framing_error)
      // before any byte after it is read as a body or as the next request.
      beast::error_code rec;
      std::string_view framing_error;
      for (std::size_t parsed = 0;;) {
        auto data = buffer.data();
        HeadStep step = feed_head(parser, std::string_view(static_cast<const char*>(data.data()), data.size()), parsed);
        if (step.status == HeadStep::done) {
          buffer.consume(parsed);
          break;
        }
        if (step.status == HeadStep::refused) {
          rec = step.ec;
          framing_error = step.framing_error;
          break;
        }
        auto [hec, hn] = co_await stream.async_read_some(buffer.prepare(4096), tuple_awaitable);
        if (hec == asio::error::eof)
          hec = parser.got_some() ? http::error::partial_message : http::error::end_of_stream;
        if (hec) {
          rec = hec;
          break;
        }
        buffer.commit(hn);
      }
      if (!rec && framing_error.empty() && uploads && parser.get().method() == http::verb::put &&
          api::UploadTransfers::streamed("PUT", std::string_view(parser.get().target().data(), parser.get().target().size()))) {
        if (!co_await upload_put(conn, parser, buffer, client_ip(parser.get()), first_byte)) co_return;
        continue;
      }
      if (!rec && framing_error.empty()) {
        if (auto cl = parser.content_length(); cl && *cl > opts.max_body_bytes) {
          rec = http::error::body_limit;
        } else {
          parser.body_limit(opts.max_body_bytes);
          stream.expires_at(first_byte + opts.request_timeout);
          std::tie(rec, std::ignore) = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
        }
      }
      if (rec == http::error::end_of_stream || rec == beast::error::timeout || rec == asio::error::operation_aborted ||
          rec == asio::error::connection_reset || rec == asio::error::eof)
        break;
      if (rec || !framing_error.empty()) {
        // The connection is closed after this answer: what follows the refused request
        // is drained unread, never parsed as another request.
        int status = 400;
        const char* code = "invalid_request";
        std::string msg = framing_error.empty() ? "malformed HTTP request" : std::string(framing_error);
        if (rec == http::error::body_limit) {
          status = 413;
          code = "payload_too_large";
          msg = opts.max_body_bytes == 1024 * 1024
                    ? "request body larger than 1 MiB"
                    : "request body larger than " + std::to_string(opts.max_body_bytes) + " bytes";
        } else if (rec == http::error::header_limit) {
          status = 431;
          msg = "request headers too large";
        }
        api.observe_refused(status);
        auto res = to_beast(api::error_response(status, code, msg), 11, false);
        stream.expires_after(std::chrono::seconds(5));
        co_await http::async_write(stream, res, tuple_awaitable);
        co_await linger_close(stream);
        co_return;
      }
      auto& req = parser.get();
      std::string remote_ip = client_ip(req);
      if (beast::websocket::is_upgrade(req)) {
        co_await upgrade(conn, parser.release(), remote_ip);
        co_return;
      }
      if (opts.site && (req.method() == http::verb::get || req.method() == http::verb::head)) {
        std::string_view target(req.target().data(), req.target().size());
        if (const StaticSite::File* f = opts.site->find(target.substr(0, target.find('?')))) {
          bool keep_alive = req.keep_alive() && !stopping;
          auto [wec, status] = co_await write_static(stream, req, *f, keep_alive);
          spdlog::debug("http {} {} {} ip={}", std::string_view(req.method_string()), target, status, remote_ip);
          if (wec || !keep_alive) break;
          continue;
        }
      }
      api::Request r = to_api_request(req, remote_ip);
      auto started = std::chrono::steady_clock::now();
      if (uploads && r.method == "GET" && api::UploadTransfers::streamed("GET", r.target)) {
        bool keep_alive = req.keep_alive() && !stopping;
        bool ok = co_await upload_get(stream, r, req.version(), keep_alive);
        spdlog::info("http GET {} {} {:.1f}ms ip={}", redact(r.target), ok ? "streamed" : "cut",
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
                     remote_ip);
        if (!ok || !keep_alive) break;
        continue;
      }
      api::Response resp = co_await asio::co_spawn(
          pool, [this, &r]() -> awaitable<api::Response> { co_return api.handle(r); }, use_awaitable);
      bool keep_alive = req.keep_alive() && !stopping;
      auto res = to_beast(resp, req.version(), keep_alive);
      stream.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
      spdlog::info("http {} {} {} {:.1f}ms ip={}", r.method, redact(r.target), resp.status,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
                   remote_ip);
      if (wec || !keep_alive) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
  }
};

HttpServer::HttpServer(asio::io_context& ioc, asio::thread_pool& pool, api::RestApi& api, HttpOptions opts, WsDeps* ws)
    : impl_(std::make_shared<Impl>(ioc, pool, api, opts, ws)) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::listen(const std::string& host, unsigned short port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("cannot parse listen address " + host);
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  auto bound = a.local_endpoint();
  std::string h = bound.address().to_string();
  if (bound.address().is_v6()) h = "[" + h + "]";
  return h + ":" + std::to_string(bound.port());
}

void HttpServer::set_uploads(api::UploadTransfers* uploads) { impl_->uploads = uploads; }

void HttpServer::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
  if (impl_->ws) {
    asio::co_spawn(asio::make_strand(impl_->ioc), impl_->lag_probe(), asio::detached);
    asio::co_spawn(asio::make_strand(impl_->ioc), impl_->ws_sweep(), asio::detached);
  }
}

void HttpServer::stop() {
  auto self = impl_;
  self->stopping = true;
  asio::post(self->acceptor.get_executor(), [self] {
    beast::error_code ec;
    self->acceptor.close(ec);
  });
  if (self->write_delay) self->write_delay->stop();  // what it holds goes now, nothing waits from here
  if (self->ws) self->ws->hub.close_all(1001, "server shutting down");
  // Wake every connection blocked waiting for its next request; one mid-request finishes
  // (keep-alive is off from now on) and then closes.
  std::lock_guard g(self->conns_mu);
  for (const auto& c : self->conns) {
    asio::post(c->stream.get_executor(), [c] {
      if (c->waiting) c->stream.cancel();
    });
  }
}

void HttpServer::abort_all() {
  std::lock_guard g(impl_->conns_mu);
  for (const auto& c : impl_->conns) {
    asio::post(c->stream.get_executor(), [c] {
      beast::error_code ec;
      c->stream.socket().close(ec);
    });
  }
}

std::size_t HttpServer::open_connections() const {
  std::lock_guard g(impl_->conns_mu);
  return impl_->conns.size();
}

}  // namespace parley::net
