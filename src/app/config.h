// app/: the binary — typed, validated configuration, wiring of the components, start-up and
// graceful shutdown. The only place that knows every layer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::app {

// Every setting of `parley serve`, validated (see CONTRACT.md "Process and configuration").
struct Config {
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8080;
  std::string db_url = "sqlite:./data/parley.db";
  std::string bus_url;
  std::string jwt_secret_file;
  std::int64_t jwt_ttl_seconds = 24 * 3600;  // 60 .. 30 days
  std::vector<std::string> allowed_origins;
  bool allow_insecure_sidebar = false;
  int ws_cooldown_ms = 500;  // 0 .. 60,000
  std::string log_level = "info";
  int io_threads = 0;                    // 0: one per core; at most 64
  int storage_threads = 16;              // 1 .. 256
  int group_commit_max = 256;            // 1 (off) .. 10,000
  int db_busy_timeout_ms = 5000;         // 0 .. 60,000 (wait for another process's lock, then 503)
  double rate_limit_per_sec = 50;        // 0 (off) .. 1,000,000
  double rate_limit_burst = 100;         // 1 .. 1,000,000
  int rate_limit_max_keys = 100000;      // 1 .. 10,000,000
  // Proxies whose X-Forwarded-For names the client (CIDR, repeatable; at most 256).
  std::vector<std::string> trusted_proxies;
  int max_connections_per_ip = 4096;          // 0 (off) .. 1,000,000 concurrent connections
  double login_failures_per_user = 10;        // 0 (off) .. 10,000 failed logins per minute
  double login_failures_per_ip = 100;         // 0 (off) .. 10,000 failed logins per minute
  int ws_ping_interval_ms = 30000;       // 100 .. 3,600,000
  int ws_idle_timeout_ms = 75000;        // 200 .. 3,600,000
  int ws_queue_max_bytes = 1024 * 1024;  // 128 KiB .. 1 GiB (one event can be ~100 KB)
  int ws_queue_max_events = 1000;        // 1 .. 1,000,000
  double ws_inbound_per_sec = 20;        // 0.1 .. 100,000
  double ws_inbound_burst = 40;          // 1 .. 100,000
  // HTTP and WebSocket framing limits. The contract fixes the largest values (413 above 1 MiB,
  // 1009 above 64 KiB); smaller ones are allowed (tests, stricter deployments).
  int http_max_body_bytes = 1024 * 1024;  // 1 KiB .. 1 MiB
  int http_max_header_bytes = 16 * 1024;  // 1 KiB .. 256 KiB
  int http_idle_timeout_ms = 60000;       // 100 .. 3,600,000 (keep-alive wait for a request)
  int http_request_timeout_ms = 30000;    // 100 .. 3,600,000 (first byte to last of one request)
  int http_header_timeout_ms = 10000;     // 100 .. 3,600,000 (first byte to the end of the header)
  int ws_max_frame_bytes = 64 * 1024;     // 1 KiB .. 64 KiB
  int ws_handshake_timeout_ms = 10000;    // 100 .. 60,000 (upgrade and close handshakes)
  int ws_write_delay_ms = 20;             // 0 .. 1,000 (0: every event is handed to its write at once)
  int presence_grace_ms = 5000;           // 100 .. 600,000 (online this long after the last close)
  // Attachments: where their files live (empty: <the SQLite file's directory>/uploads, or
  // ./data/uploads without a SQLite file; with several instances, a directory they share) and
  // how long an unfinished upload is kept.
  std::string uploads_dir;
  std::int64_t upload_ttl_ms = 3600 * 1000;  // 100 .. 7 days
  // The built-in web client's directory, served at / (empty: none). parse_config's default is
  // the source tree's web/ (compiled in), when it exists.
  std::string web_dir;
};

enum class ParseOutcome { Run, ExitOk, ExitUsage };

// Parses argv (flags win over PARLEY_* environment variables). On a bad value prints one
// line to stderr and returns ExitUsage (the caller exits 2).
ParseOutcome parse_config(int argc, char** argv, Config& out);

}  // namespace parley::app
