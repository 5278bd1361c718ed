#pragma once
// WebSocket settings and what a session needs from the process; no Beast here, so app/ can
// wire them without compiling Beast's headers.
#include <chrono>
#include <cstddef>

#include "api/metrics.h"
#include "api/ws_service.h"
#include "net/hub.h"

namespace boost::asio {
class thread_pool;
}

namespace parley::net {

struct WsOptions {
  std::size_t queue_max_bytes = 1024 * 1024;  // outbound queue bound, bytes (net/outbound_queue.h)
  std::size_t queue_max_events = 1000;        // outbound queue bound, events
  std::size_t queue_hard_factor = 4;          // beyond this many times the bounds: slow consumer at once
  // A queue over its bounds while the connection's write has been pending this long: slow
  // consumer (the client does not drain). A write pending for write_timeout: cut.
  std::chrono::milliseconds write_stall{1000};
  std::chrono::milliseconds write_timeout{10000};
  // A connection whose queue holds a quarter of its bound right after a write completed is
  // behind (api::LoadGauge) until a write completes below it or stays pending this long.
  std::chrono::milliseconds write_blocked{50};
  std::chrono::milliseconds ping_interval{30000};
  std::chrono::milliseconds idle_timeout{75000};       // silence before close
  std::chrono::milliseconds handshake_timeout{10000};  // upgrade and close handshakes
  std::chrono::seconds close_timeout{5};               // a close frame that cannot leave: cut
  std::chrono::seconds snapshot_timeout{10};           // sidebar: badge snapshot not ready → 1011
  std::size_t max_frame_bytes = 64 * 1024;             // larger → close 1009
  double inbound_per_sec = 20;                         // client frames per second…
  double inbound_burst = 40;                           // …with this burst; beyond → error event
  std::size_t replay_max = 1000;                       // more missing → resync_required
  int replay_page = 200;                               // messages per storage read of a replay
  std::size_t write_batch = 64;                        // frames taken from the queue per wake-up
  // How long an event may wait for the next ones to leave in the same write (0: none, each
  // goes at once). A session with write_batch events waiting writes them without waiting.
  std::chrono::milliseconds write_delay{0};
};

// What a session needs from the rest of the process.
struct WsDeps {
  Hub& hub;
  api::WsService& service;
  boost::asio::thread_pool& pool;
  api::Metrics& metrics;
  WsOptions opts;
};

}  // namespace parley::net
