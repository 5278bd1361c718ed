// parley: the chat server binary. Wires the components (config → store → chat → api → net),
// runs the IO threads and shuts down gracefully on SIGTERM/SIGINT.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <pthread.h>
#include <csignal>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "api/cooldown.h"
#include "api/fanout.h"
#include "api/known_users.h"
#include "api/metrics.h"
#include "api/rate_limiter.h"
#include "api/rest.h"
#include "api/upload_transfers.h"
#include "api/ws_gate.h"
#include "api/ws_service.h"
#include "app/config.h"
#include "auth/jwt.h"
#include "auth/url_signer.h"
#include "bus/bus.h"
#include "bus/open_bus.h"
#include "bus/redis_bus.h"
#include "bus/redis_kv.h"
#include "bus/redis_presence.h"
#include "chat/service.h"
#include "chat/uploads.h"
#include "net/http_server.h"
#include "net/static_site.h"
#include "net/hub.h"
#include "net/presence_keeper.h"
#include "net/ws_options.h"
#include "storage/open_store.h"

namespace fs = std::filesystem;
using namespace parley;

namespace {

// Events waiting in the hub beyond which the server counts as behind and sheds new sends.
constexpr std::int64_t kFanoutBehindWatermark = 256;

struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes a 0600 file whole or not at all, and durably: the bytes are synced before the rename
// and the directory after it (without that, a crash or a filesystem turning read-only soon
// after the first start left an empty key file, and the server refused to start again).
void write_file_durably(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw StartupError("cannot write JWT key file " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  for (std::size_t off = 0; ok && off < content.size();) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    throw StartupError("cannot write JWT key file " + path + ": " + std::strerror(err));
  }
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// The HS256 key: the file's bytes without a trailing newline; when no file is named, a key
// kept next to the SQLite file (created 0600 on first start), or a fresh one for memory.
std::string load_jwt_key(const app::Config& c) {
  std::string path = c.jwt_secret_file;
  if (path.empty()) {
    std::string db = storage::sqlite_path(c.db_url);
    if (db.empty()) return auth::random_key_hex(32);
    path = db + ".jwt-key";
    if (!fs::exists(path)) {
      std::string key = auth::random_key_hex(32);
      write_file_durably(path, key + "\n");
      return key;
    }
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw StartupError("cannot read --jwt-secret-file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string key = ss.str();
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.size() < 32)
    throw StartupError("the JWT key in " + path + " is " + std::to_string(key.size()) +
                       " bytes; at least 32 are required");
  return key;
}

int serve(const app::Config& cfg) {
  // SIGINT and SIGTERM are taken by one thread waiting for them (sigwait, below), not by a
  // handler: every thread inherits them blocked from here on. A handler runs on whichever
  // thread the kernel picks, and a ThreadSanitizer build defers it to that thread's next
  // intercepted call — which an idle pool thread may never make, so a SIGTERM went unseen.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto logger = spdlog::stderr_color_mt("parley");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  std::unique_ptr<bus::Bus> bus_ptr;
  try {
    bus_ptr = bus::open_bus(cfg.bus_url);
  } catch (const std::invalid_argument& e) {
    throw StartupError(e.what());
  }
  bus::Bus& bus = *bus_ptr;
  std::string db_path = storage::sqlite_path(cfg.db_url);
  if (!db_path.empty()) {
    auto parent = fs::path(db_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) throw StartupError("cannot create the database directory " + parent.string() + ": " + ec.message());
  }
  std::string key = load_jwt_key(cfg);

  api::Metrics metrics;
  storage::StoreConfig sc;
  sc.db_url = cfg.db_url;
  sc.threads = static_cast<std::size_t>(cfg.storage_threads);
  sc.group_commit_max = static_cast<std::size_t>(cfg.group_commit_max);
  sc.on_commit = [&metrics](std::size_t n) { metrics.observe_commit(n); };
  sc.busy_timeout_ms = cfg.db_busy_timeout_ms;
  metrics.declare("parley_storage_healthy", "gauge", "1 while storage writes succeed, 0 while they fail (/readyz).");
  metrics.declare("parley_storage_faults_total", "counter",
                  "Operations refused with 503 because of a storage fault (disk full, read-only, locked, I/O).");
  metrics.set("parley_storage_healthy", 1);
  metrics.add("parley_storage_faults_total", 0);
  sc.on_health = [&metrics](bool ok) { metrics.set("parley_storage_healthy", ok ? 1 : 0); };
  sc.on_failed = [&metrics](std::size_t n) { metrics.add("parley_storage_faults_total", static_cast<double>(n)); };
  auto store = storage::open_store(sc);

  int io_threads = cfg.io_threads > 0 ? cfg.io_threads : std::max(1u, std::thread::hardware_concurrency());
  boost::asio::io_context ioc(io_threads);
  boost::asio::thread_pool pool(static_cast<std::size_t>(cfg.storage_threads));

  // Committed events: chat → bus → hub (per-room order, badges, rendering) → sockets.
  net::HubOptions hub_opts;
  api::LoadGauge load(kFanoutBehindWatermark);
  chat::ChatService chat(*store, &bus);
  // Tokens name this database (a key kept across a replaced database opens nothing) and
  // carry the user's token version; one cache of versions serves REST and WebSockets.
  auth::JwtCodec jwt(key, cfg.jwt_ttl_seconds, store->database_id());
  api::KnownUsers known(chat, api::KnownUsers::kDefaultMaxUsers);
  api::RateLimiter limiter(cfg.rate_limit_per_sec, cfg.rate_limit_burst,
                           static_cast<std::size_t>(cfg.rate_limit_max_keys));
  api::LoginGuard login_guard(cfg.login_failures_per_user, cfg.login_failures_per_ip,
                              static_cast<std::size_t>(cfg.rate_limit_max_keys));
  api::RestApi rest(chat, *store, jwt, known, limiter, metrics, &load, &login_guard);
  // Attachments (docs/decisions.md "Attachments"): links signed with a key derived from the
  // JWT key (the same on every instance), files in one directory every instance reaches.
  auth::UrlSigner url_signer(key);
  chat::UploadLimits upload_limits;
  upload_limits.ttl_ms = cfg.upload_ttl_ms;
  chat::UploadService uploads(*store, upload_limits);
  chat.set_upload_urls([&url_signer](Id id) { return url_signer.url(id, now_ms()); });
  rest.set_uploads(&uploads);
  std::string uploads_dir = cfg.uploads_dir;
  if (uploads_dir.empty())
    uploads_dir = db_path.empty() ? std::string("./data/uploads") : (fs::path(db_path).parent_path() / "uploads").string();
  if (uploads_dir.empty() || uploads_dir == "/uploads") uploads_dir = "./uploads";
  std::unique_ptr<api::UploadTransfers> transfers;
  try {
    transfers = std::make_unique<api::UploadTransfers>(
        uploads, [&rest](std::string_view t) { return rest.authenticate(t); }, url_signer, &bus, uploads_dir);
  } catch (const std::runtime_error& e) {
    throw StartupError(e.what());
  }
  // With several instances the connect cooldown is kept in their Redis (a key per user,
  // endpoint and room that expires by itself), with each instance's own table while it is away.
  std::unique_ptr<bus::RedisKv> kv;
  std::unique_ptr<api::SharedCooldown> shared_cooldown;
  if (!cfg.bus_url.empty() && cfg.ws_cooldown_ms > 0) {
    auto ro = bus::parse_redis_url(cfg.bus_url, nullptr);  // open_bus accepted it
    bus::RedisKvOptions ko;
    ko.host = ro->host;
    ko.port = ro->port;
    ko.prefix = ro->prefix;
    kv = std::make_unique<bus::RedisKv>(ko);
    api::SharedCooldown::Options so;
    so.where = kv->where();
    shared_cooldown = std::make_unique<api::SharedCooldown>(
        [&store = *kv](const std::string& key, std::chrono::milliseconds ttl, std::string* problem) {
          switch (store.set_if_absent("cd:" + key, ttl, problem)) {
            case bus::RedisKv::SetResult::Set:
              return api::Claim::Passed;
            case bus::RedisKv::SetResult::Exists:
              return api::Claim::Refused;
            case bus::RedisKv::SetResult::Failed:
              break;
          }
          return api::Claim::Unavailable;
        },
        so);
    metrics.declare("parley_ws_cooldown_shared", "gauge",
                    "1 while the WebSocket connect cooldown is decided in Redis (shared by every instance), 0 while "
                    "Redis is away and each instance keeps its own.");
    metrics.declare("parley_ws_cooldown_decisions_total", "counter",
                    "Connect cooldown decisions by who made them: redis, local (refused by this instance's table "
                    "before asking Redis), fallback (this instance's table while Redis was away).");
    metrics.declare("parley_ws_cooldown_redis_failures_total", "counter",
                    "Cooldown claims Redis did not answer (unreachable, timeout, error reply).");
    metrics.declare("parley_ws_cooldown_redis_outages_total", "counter",
                    "Times the cooldown went from Redis to each instance's own table.");
    metrics.add_collector([&sc = *shared_cooldown](api::Metrics& m) {
      auto s = sc.stats();
      auto d = [&m](const char* by, const char* decision, std::uint64_t n) {
        m.set(std::string("parley_ws_cooldown_decisions_total{by=\"") + by + "\",decision=\"" + decision + "\"}",
              static_cast<double>(n));
      };
      m.set("parley_ws_cooldown_shared", s.up ? 1 : 0);
      d("redis", "accepted", s.shared_passed);
      d("redis", "refused", s.shared_refused);
      d("local", "refused", s.local_refused);
      d("fallback", "accepted", s.fallback_passed);
      d("fallback", "refused", s.fallback_refused);
      m.set("parley_ws_cooldown_redis_failures_total", static_cast<double>(s.failures));
      m.set("parley_ws_cooldown_redis_outages_total", static_cast<double>(s.outages));
    });
  }
  api::WsGate gate(chat, jwt, known,
                   api::WsGateOptions{cfg.allowed_origins, cfg.allow_insecure_sidebar, cfg.ws_cooldown_ms, 100000},
                   shared_cooldown.get());
  net::WsOptions wso;
  wso.ping_interval = std::chrono::milliseconds(cfg.ws_ping_interval_ms);
  wso.idle_timeout = std::chrono::milliseconds(cfg.ws_idle_timeout_ms);
  wso.queue_max_bytes = static_cast<std::size_t>(cfg.ws_queue_max_bytes);
  wso.queue_max_events = static_cast<std::size_t>(cfg.ws_queue_max_events);
  wso.inbound_per_sec = cfg.ws_inbound_per_sec;
  wso.inbound_burst = cfg.ws_inbound_burst;
  wso.max_frame_bytes = static_cast<std::size_t>(cfg.ws_max_frame_bytes);
  wso.handshake_timeout = std::chrono::milliseconds(cfg.ws_handshake_timeout_ms);
  wso.write_delay = std::chrono::milliseconds(cfg.ws_write_delay_ms);
  api::WsService ws_service(chat, gate, metrics, load);
  hub_opts.interest = [&bus](Id user, bool watch) { watch ? bus.watch_user(user) : bus.unwatch_user(user); };
  hub_opts.room_interest = [&bus](Id room, bool watch) { watch ? bus.watch_room(room) : bus.unwatch_room(room); };
  // Typing events of this instance's sockets go out on the bus (back to this hub, and to
  // the instances that follow the room).
  hub_opts.publish = [&bus](chat::EventPtr e) { bus.publish(std::move(e)); };
  // Presence: with --bus, the count of each user's connections is shared in Redis (a lease per
  // instance, this instance's own ledger while Redis is away); alone, this instance's ledger.
  std::unique_ptr<bus::RedisKv> presence_kv;
  std::unique_ptr<chat::PresenceLedger> ledger;
  net::PresenceOptions po;
  po.grace = std::chrono::milliseconds(cfg.presence_grace_ms);
  if (!cfg.bus_url.empty()) {
    auto ro = bus::parse_redis_url(cfg.bus_url, nullptr);  // open_bus accepted it
    bus::RedisKvOptions ko;
    ko.host = ro->host;
    ko.port = ro->port;
    ko.prefix = ro->prefix;
    presence_kv = std::make_unique<bus::RedisKv>(ko);
    bus::RedisPresenceOptions rp;
    rp.instance = auth::random_key_hex(8);
    rp.grace = po.grace;
    auto shared = std::make_unique<bus::RedisPresenceLedger>(*presence_kv, rp);
    metrics.declare("parley_presence_shared", "gauge",
                    "1 while presence is decided in Redis (shared by every instance), 0 while Redis is away and each "
                    "instance decides from its own connections.");
    metrics.add_collector([&l = *shared](api::Metrics& m) { m.set("parley_presence_shared", l.shared() ? 1 : 0); });
    ledger = std::move(shared);
    po.sweep_every = rp.lease / 3;
  } else {
    ledger = std::make_unique<chat::LocalPresenceLedger>();
  }
  net::PresenceKeeper presence(pool, *ledger, chat, [&bus](chat::EventPtr e) { bus.publish(std::move(e)); }, po);
  hub_opts.presence = [&presence](Id user, bool here) { presence.connection(user, here); };
  rest.attach_presence([&l = *ledger](Id user) { return l.online(user); });
  net::Hub hub(ioc, pool, ws_service, hub_opts);
  ws_service.attach_typing(hub);
  // The version cache learns of a revocation before the hub closes the sockets: a socket
  // registering after the hub's close finds it revoked (WsGate::revoked).
  bus.subscribe([&hub, &known](const chat::EventPtr& e) {
    known.on_event(*e);
    hub.on_event(e);
  });
  // A bus that can lose events (Redis): while it is away every token is checked in storage;
  // once it is back the version cache starts afresh and every connected user's state is read
  // again (badges, rooms left, revocations, messages behind storage); a user or room whose
  // subscription has just come into place is read again too (events of the moment between
  // the interest and the subscription: for a room, every user here who follows it).
  bus.on_link([&hub, &known](bus::Bus::Link link, Id id) {
    switch (link) {
      case bus::Bus::Link::Lost:
        known.distrust();
        break;
      case bus::Bus::Link::Restored:
        known.trust();
        hub.resync();
        break;
      case bus::Bus::Link::Watching:
        hub.watching(id);
        break;
      case bus::Bus::Link::WatchingRoom:
        hub.resync_room(id);
        break;
    }
  });
  rest.add_readiness_check([&bus] { return bus.problem(); });
  if (!cfg.bus_url.empty()) {
    metrics.declare("parley_bus_up", "gauge", "1 while the bus carries events (both Redis connections up).");
    metrics.declare("parley_bus_events_total", "counter",
                    "Bus events by outcome: published to Redis, dropped from the full publish queue, received, "
                    "own echo skipped, duplicate copy skipped, malformed payload dropped, ephemeral (typing) not queued "
                    "while the link is down or the queue half full.");
    metrics.declare("parley_bus_connects_total", "counter", "Successful (re)subscriptions to Redis.");
    metrics.declare("parley_bus_queued_events", "gauge", "Events waiting in the publish queue.");
    metrics.add_collector([&bus](api::Metrics& m) {
      m.set("parley_bus_up", bus.healthy() ? 1 : 0);
      for (const auto& [name, n] : bus.counters()) {
        if (name == "connects")
          m.set("parley_bus_connects_total", static_cast<double>(n));
        else if (name == "queued")
          m.set("parley_bus_queued_events", static_cast<double>(n));
        else
          m.set("parley_bus_events_total{outcome=\"" + name + "\"}", static_cast<double>(n));
      }
    });
  }
  net::WsDeps ws{hub, ws_service, pool, metrics, wso};
  metrics.declare("parley_ws_connections", "gauge", "Open WebSocket connections by endpoint.");
  metrics.declare("parley_ws_events_dropped_total", "counter", "Queued events dropped when a connection was cut.");
  metrics.declare("parley_ws_slow_consumer_closes_total", "counter", "Connections closed 1008 slow consumer.");
  metrics.declare("parley_ws_handshake_failures_total", "counter", "Refused or failed upgrades by reason.");
  metrics.declare("parley_ws_protocol_errors_total", "counter",
                  "Connections closed 1002, 1007 or 1009 for an RFC 6455 violation.");
  metrics.declare("parley_ws_write_delay_full_total", "counter",
                  "Events handed to a socket's write before the write delay ended: a write's worth was waiting.");
  metrics.add("parley_ws_write_delay_full_total", 0);
  metrics.add("parley_ws_connections{endpoint=\"sidebar\"}", 0);
  metrics.add("parley_ws_connections{endpoint=\"chatroom\"}", 0);
  net::HttpOptions http_opts;
  http_opts.max_body_bytes = static_cast<std::size_t>(cfg.http_max_body_bytes);
  http_opts.max_header_bytes = static_cast<std::size_t>(cfg.http_max_header_bytes);
  http_opts.idle_timeout = std::chrono::milliseconds(cfg.http_idle_timeout_ms);
  http_opts.request_timeout = std::chrono::milliseconds(cfg.http_request_timeout_ms);
  http_opts.header_timeout = std::chrono::milliseconds(cfg.http_header_timeout_ms);
  http_opts.max_connections_per_ip = static_cast<std::size_t>(cfg.max_connections_per_ip);
  for (const auto& p : cfg.trusted_proxies) http_opts.trusted_proxies.add(p);  // validated by parse_config
  if (!cfg.web_dir.empty()) {
    http_opts.site = net::StaticSite::load(cfg.web_dir);  // throws: start-up fails with the reason
    spdlog::info("web client: {} files from {}", http_opts.site->size(), cfg.web_dir);
  }
  net::HttpServer server(ioc, pool, rest, http_opts, &ws);
  server.set_uploads(transfers.get());
  // Expiry of unfinished uploads: a sweep on the pool every quarter of the TTL (50 ms .. 60 s).
  boost::asio::steady_timer sweep_timer(ioc);
  std::atomic<bool> sweeping{true};
  auto sweep_every = std::chrono::milliseconds(std::clamp<std::int64_t>(cfg.upload_ttl_ms / 4, 50, 60000));
  std::function<void()> arm_sweep = [&] {
    if (!sweeping) return;
    sweep_timer.expires_after(sweep_every);
    sweep_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || !sweeping) return;
      boost::asio::post(pool, [&] {
        try {
          if (auto n = transfers->sweep(now_ms())) spdlog::info("uploads: removed {} expired files", n);
        } catch (const std::exception& e) {
          spdlog::warn("uploads: expiry sweep failed: {}", e.what());
        }
        boost::asio::post(ioc, arm_sweep);
      });
    });
  };
  arm_sweep();

  // Shutdown: stop accepting, let requests in flight finish (at most 8 s), then stop.
  boost::asio::steady_timer drain(ioc);
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<void()> poll_drained = [&] {
    if (server.open_connections() == 0 || std::chrono::steady_clock::now() > *deadline) {
      ioc.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(20));
    drain.async_wait([&](const boost::system::error_code&) { poll_drained(); });
  };
  auto on_signal = [&](int sig) {
    spdlog::info("signal {}: shutting down", sig);
    *deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    server.stop();
    poll_drained();
  };
  // Waits for SIGINT/SIGTERM from the start (one sent before the listening line is taken
  // too: it stays pending while blocked) and hands the first to the IO loop, the later ones
  // to nobody; ended, on every way out of here, by a signal to itself.
  struct SignalThread {
    std::atomic<bool> done{false};
    std::thread t;
    ~SignalThread() {
      done = true;
      pthread_kill(t.native_handle(), SIGTERM);
      t.join();
    }
  } signal_thread;
  signal_thread.t = std::thread([&] {
    for (bool posted = false;;) {
      int sig = 0;
      if (sigwait(&stop_signals, &sig) != 0) continue;
      if (signal_thread.done) return;
      if (!posted) boost::asio::post(ioc, [&on_signal, sig] { on_signal(sig); });
      posted = true;
    }
  });

  // Signal handling is in place before the listening line, so a script may stop the server
  // as soon as it has read that line.
  std::string bound = server.listen(cfg.listen_host, cfg.listen_port);
  server.start();
  std::printf("parley: listening on http://%s\n", bound.c_str());
  if (http_opts.site) std::printf("parley: open http://%s/ in a browser to chat\n", bound.c_str());
  std::fflush(stdout);
  spdlog::info("listening on http://{} db={} bus={} io_threads={} storage_threads={}", bound, cfg.db_url,
               cfg.bus_url.empty() ? "local" : cfg.bus_url, io_threads, cfg.storage_threads);

  bus.start();
  presence.start();
  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  sweeping = false;
  hub.shutdown();
  presence.stop();  // its timers end, so the pool's threads can
  pool.join();
  bus.stop();  // sends what the last writes published (at most 1 s more), then ends its threads
  // Connections still open after the deadline: cut them and let their coroutines unwind
  // now, while everything they refer to is still alive.
  if (server.open_connections() > 0) {
    server.abort_all();
    ioc.restart();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (server.open_connections() > 0 && std::chrono::steady_clock::now() < until)
      ioc.run_for(std::chrono::milliseconds(20));
  }
  store.reset();  // the writer drains its queue and closes the database
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  app::Config cfg;
  switch (app::parse_config(argc, argv, cfg)) {
    case app::ParseOutcome::ExitOk:
      return 0;
    case app::ParseOutcome::ExitUsage:
      return 2;
    case app::ParseOutcome::Run:
      break;
  }
  try {
    return serve(cfg);
  } catch (const StartupError& e) {
    std::cerr << "parley: configuration error: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "parley: cannot start: " << e.what() << std::endl;
    return 1;
  }
}
