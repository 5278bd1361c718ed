#include "app/config.h"

#include <cstdlib>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <iostream>

#include "api/client_ip.h"

namespace parley::app {
namespace {

// "HOST:PORT" or "[V6]:PORT".
bool split_listen(const std::string& s, std::string& host, unsigned short& port) {
  std::size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size()) return false;
  host = s.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  std::string p = s.substr(colon + 1);
  if (p.size() > 5) return false;
  unsigned long v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > 65535) return false;
  port = static_cast<unsigned short>(v);
  if (host == "localhost") host = "127.0.0.1";
  return !host.empty();
}

}  // namespace

ParseOutcome parse_config(int argc, char** argv, Config& c) {
  CLI::App app{"parley — a real-time chat server", "parley"};
  app.require_subcommand(1, 1);
  auto* serve = app.add_subcommand("serve", "start the server");
  std::string listen = "127.0.0.1:8080";
  auto env = [](const char* flag) { return std::string("PARLEY_") + flag; };
  serve->add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")->envname(env("LISTEN"));
  serve->add_option("--db", c.db_url, "sqlite:PATH | sqlite::memory: | postgres://…")->envname(env("DB"));
  serve->add_option("--bus", c.bus_url, "empty (in-process) or redis://HOST:PORT")->envname(env("BUS"));
  serve->add_option("--jwt-secret-file", c.jwt_secret_file, "HS256 key file (>= 32 bytes)")
      ->envname(env("JWT_SECRET_FILE"));
  serve->add_option("--jwt-ttl", c.jwt_ttl_seconds, "token lifetime in seconds")
      ->envname(env("JWT_TTL"))
      ->check(CLI::Range(std::int64_t{60}, std::int64_t{30} * 24 * 3600));
  serve->add_option("--allowed-origin", c.allowed_origins, "allowed browser Origin (repeatable)")
      ->envname(env("ALLOWED_ORIGIN"))
      ->delimiter(',');
  serve->add_flag("--allow-insecure-sidebar", c.allow_insecure_sidebar, "accept /ws?user_id= without a token")
      ->envname(env("ALLOW_INSECURE_SIDEBAR"));
  serve->add_option("--ws-cooldown-ms", c.ws_cooldown_ms, "min ms between WebSocket connects per user/endpoint")
      ->envname(env("WS_COOLDOWN_MS"))
      ->check(CLI::Range(0, 60000));
  serve->add_option("--log-level", c.log_level, "trace|debug|info|warn|error")
      ->envname(env("LOG_LEVEL"))
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  serve->add_option("--io-threads", c.io_threads, "IO threads (0: one per core)")
      ->envname(env("IO_THREADS"))
      ->check(CLI::Range(0, 64));
  serve->add_option("--storage-threads", c.storage_threads, "threads running storage and handlers")
      ->envname(env("STORAGE_THREADS"))
      ->check(CLI::Range(1, 256));
  serve->add_option("--group-commit-max", c.group_commit_max, "write jobs per transaction (1 turns group commit off)")
      ->envname(env("GROUP_COMMIT_MAX"))
      ->check(CLI::Range(1, 10000));
  serve->add_option("--db-busy-timeout-ms", c.db_busy_timeout_ms,
                    "how long a write waits for a lock held by another process before it fails with 503")
      ->envname(env("DB_BUSY_TIMEOUT_MS"))
      ->check(CLI::Range(0, 60000));
  serve->add_option("--rate-limit-per-sec", c.rate_limit_per_sec, "API requests per second per user or IP (0: off)")
      ->envname(env("RATE_LIMIT_PER_SEC"))
      ->check(CLI::Range(0.0, 1e6));
  serve->add_option("--rate-limit-burst", c.rate_limit_burst, "API request burst per user or IP")
      ->envname(env("RATE_LIMIT_BURST"))
      ->check(CLI::Range(1.0, 1e6));
  serve->add_option("--rate-limit-max-keys", c.rate_limit_max_keys, "rate-limit buckets kept (LRU)")
      ->envname(env("RATE_LIMIT_MAX_KEYS"))
      ->check(CLI::Range(1, 10000000));
  serve->add_option("--trusted-proxy", c.trusted_proxies, "reverse proxy CIDR whose X-Forwarded-For is believed (repeatable)")
      ->envname(env("TRUSTED_PROXY"))
      ->delimiter(',');
  serve->add_option("--max-connections-per-ip", c.max_connections_per_ip, "concurrent connections per client IP (0: off)")
      ->envname(env("MAX_CONNECTIONS_PER_IP"))
      ->check(CLI::Range(0, 1000000));
  serve->add_option("--login-failures-per-user", c.login_failures_per_user, "failed logins per minute per username (0: off)")
      ->envname(env("LOGIN_FAILURES_PER_USER"))
      ->check(CLI::Range(0.0, 10000.0));
  serve->add_option("--login-failures-per-ip", c.login_failures_per_ip, "failed logins per minute per client IP (0: off)")
      ->envname(env("LOGIN_FAILURES_PER_IP"))
      ->check(CLI::Range(0.0, 10000.0));
  serve->add_option("--ws-ping-interval-ms", c.ws_ping_interval_ms, "WebSocket ping frame interval")
      ->envname(env("WS_PING_INTERVAL_MS"))
      ->check(CLI::Range(100, 3600000));
  serve->add_option("--ws-idle-timeout-ms", c.ws_idle_timeout_ms, "close a WebSocket silent for this long")
      ->envname(env("WS_IDLE_TIMEOUT_MS"))
      ->check(CLI::Range(200, 3600000));
  serve->add_option("--ws-queue-max-bytes", c.ws_queue_max_bytes, "outbound queue bound per connection, bytes")
      ->envname(env("WS_QUEUE_MAX_BYTES"))
      ->check(CLI::Range(128 * 1024, 1 << 30));
  serve->add_option("--ws-queue-max-events", c.ws_queue_max_events, "outbound queue bound per connection, events")
      ->envname(env("WS_QUEUE_MAX_EVENTS"))
      ->check(CLI::Range(1, 1000000));
  serve->add_option("--ws-inbound-per-sec", c.ws_inbound_per_sec, "client frames per second per connection")
      ->envname(env("WS_INBOUND_PER_SEC"))
      ->check(CLI::Range(0.1, 100000.0));
  serve->add_option("--ws-inbound-burst", c.ws_inbound_burst, "client frame burst per connection")
      ->envname(env("WS_INBOUND_BURST"))
      ->check(CLI::Range(1.0, 100000.0));
  serve->add_option("--http-max-body-bytes", c.http_max_body_bytes, "request body limit, bytes (larger: 413)")
      ->envname(env("HTTP_MAX_BODY_BYTES"))
      ->check(CLI::Range(1024, 1024 * 1024));
  serve->add_option("--http-max-header-bytes", c.http_max_header_bytes, "request header limit, bytes (larger: 431)")
      ->envname(env("HTTP_MAX_HEADER_BYTES"))
      ->check(CLI::Range(1024, 256 * 1024));
  serve->add_option("--http-idle-timeout-ms", c.http_idle_timeout_ms, "close a keep-alive connection idle this long")
      ->envname(env("HTTP_IDLE_TIMEOUT_MS"))
      ->check(CLI::Range(100, 3600000));
  serve
      ->add_option("--http-request-timeout-ms", c.http_request_timeout_ms,
                   "time from a request's first byte to its last")
      ->envname(env("HTTP_REQUEST_TIMEOUT_MS"))
      ->check(CLI::Range(100, 3600000));
  serve->add_option("--http-header-timeout-ms", c.http_header_timeout_ms, "time from a request's first byte to its header's end")
      ->envname(env("HTTP_HEADER_TIMEOUT_MS"))
      ->check(CLI::Range(100, 3600000));
  serve->add_option("--ws-max-frame-bytes", c.ws_max_frame_bytes, "WebSocket message limit, bytes (larger: 1009)")
      ->envname(env("WS_MAX_FRAME_BYTES"))
      ->check(CLI::Range(1024, 64 * 1024));
  serve->add_option("--ws-handshake-timeout-ms", c.ws_handshake_timeout_ms, "WebSocket upgrade and close handshakes")
      ->envname(env("WS_HANDSHAKE_TIMEOUT_MS"))
      ->check(CLI::Range(100, 60000));
  serve
      ->add_option("--ws-write-delay-ms", c.ws_write_delay_ms,
                   "how long a WebSocket event may wait for the next ones to leave in one write (0: none)")
      ->envname(env("WS_WRITE_DELAY_MS"))
      ->check(CLI::Range(0, 1000));
  serve->add_option("--presence-grace-ms", c.presence_grace_ms,
                    "how long a user stays online after their last connection closed")
      ->envname(env("PRESENCE_GRACE_MS"))
      ->check(CLI::Range(100, 600000));
  serve->add_option("--uploads-dir", c.uploads_dir, "directory of attachment files (shared by every instance)")
      ->envname(env("UPLOADS_DIR"));
  serve->add_option("--upload-ttl-ms", c.upload_ttl_ms, "remove an unfinished upload this long after its creation")
      ->envname(env("UPLOAD_TTL_MS"))
      ->check(CLI::Range(static_cast<std::int64_t>(100), static_cast<std::int64_t>(7) * 24 * 3600 * 1000));
  c.web_dir = PARLEY_DEFAULT_WEB_DIR;
  auto* web_dir = serve->add_option("--web-dir", c.web_dir, "directory of the web client served at / (empty: none)")
      ->envname(env("WEB_DIR"));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help(serve->parsed() ? "serve" : "");
    return ParseOutcome::ExitOk;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    for (auto& ch : msg)
      if (ch == '\n') ch = ' ';
    std::cerr << "parley: configuration error: " << msg << std::endl;
    return ParseOutcome::ExitUsage;
  }
  auto usage = [](const std::string& m) {
    std::cerr << "parley: configuration error: " << m << std::endl;
    return ParseOutcome::ExitUsage;
  };
  if (!split_listen(listen, c.listen_host, c.listen_port))
    return usage("--listen must be HOST:PORT, got \"" + listen + "\"");
  bool sqlite = c.db_url.rfind("sqlite:", 0) == 0 && c.db_url.size() > 7;
  bool postgres = c.db_url.rfind("postgres://", 0) == 0 || c.db_url.rfind("postgresql://", 0) == 0;
  if (!sqlite && !postgres)
    return usage("--db must be sqlite:PATH, sqlite::memory: or postgres://…, got \"" + c.db_url + "\"");
  if (postgres && c.jwt_secret_file.empty())
    return usage("--jwt-secret-file is required with PostgreSQL (every instance must share the key)");
  if (!c.bus_url.empty() && c.bus_url.rfind("redis://", 0) != 0)
    return usage("--bus must be empty or redis://HOST:PORT, got \"" + c.bus_url + "\"");
  for (const auto& o : c.allowed_origins)
    if (o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0)
      return usage("--allowed-origin must be an http:// or https:// origin, got \"" + o + "\"");
  {
    api::TrustedProxies proxies;
    for (const auto& p : c.trusted_proxies)
      if (!proxies.add(p))
        return usage("--trusted-proxy must be an IP address or CIDR (at most " +
                     std::to_string(api::TrustedProxies::kMaxCidrs) + "), got \"" + p + "\"");
  }
  // The compiled-in default only when it is there (a binary moved away from its source tree
  // serves no web client); a directory given explicitly must load, or start-up fails.
  std::error_code ec;
  if (web_dir->count() == 0 && !std::getenv("PARLEY_WEB_DIR") && !std::filesystem::is_directory(c.web_dir, ec))
    c.web_dir.clear();
  if (c.ws_idle_timeout_ms <= c.ws_ping_interval_ms)
    return usage("--ws-idle-timeout-ms must be larger than --ws-ping-interval-ms");
  return ParseOutcome::Run;
}

}  // namespace parley::app
