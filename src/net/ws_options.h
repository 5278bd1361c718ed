#pragma once
// WebSocket settings and what a session needs from the process; no Beast here, so app/ can
// wire them without compiling Beast's headers.
#include <chrono>
#include <cstddef>

#include "api/metrics.h"
#include "chat/service.h"
#include "net/hub.h"

namespace boost::asio {
class thread_pool;
}

namespace parley::net {

struct WsOptions {
  std::size_t queue_max_bytes = 1024 * 1024;  // outbound queue bound, bytes
  std::size_t queue_max_events = 1000;        // outbound queue bound, events
  std::chrono::milliseconds ping_interval{30000};
  std::chrono::milliseconds idle_timeout{75000};       // silence before close
  std::chrono::milliseconds handshake_timeout{10000};  // upgrade and close handshakes
  std::size_t max_frame_bytes = 64 * 1024;             // larger → close 1009
  double inbound_per_sec = 20;                         // client frames per second…
  double inbound_burst = 40;                           // …with this burst; beyond → error event
  std::size_t replay_max = 1000;                       // more missing → resync_required
};

// What a session needs from the rest of the process.
struct WsDeps {
  Hub& hub;
  chat::ChatService& chat;
  boost::asio::thread_pool& pool;
  api::Metrics& metrics;
  WsOptions opts;
};

}  // namespace parley::net
