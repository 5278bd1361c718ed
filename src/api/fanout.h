#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "chat/types.h"

namespace parley::api {

// How a connection's outbound queue treats an event when the client falls behind
// (net/outbound_queue.h): the policy of its class, as Redis has client-output-buffer
// classes.
enum class EventClass {
  Message,    // new_message, message_read, ack, error, replies: never dropped
  Badge,      // unread_count_update: coalesced per room, the newest wins
  Ephemeral,  // typing, presence: dropped first
};

// One serialized server→client event, rendered once per instance and shared by every
// connection it goes to.
struct OutEvent {
  EventClass cls = EventClass::Message;
  Id room = 0;
  chat::Seq seq = 0;       // new_message: the message's seq (per-connection order and dedup); else 0
  chat::Seq last_seq = 0;  // Badge: (last_seq, read_seq) orders a badge's states
  chat::Seq read_seq = 0;
  std::string payload;  // the JSON text frame
};
using OutEventPtr = std::shared_ptr<const OutEvent>;

// Whether the server itself is behind, shared by the fan-out and the connections (which
// report their backlog) and the entrances (REST and WebSocket sends), which refuse new sends
// while it is: load is shed where it enters, never by closing a reader that keeps up
// (CONTRACT.md "Keep-alive"). Behind means: the fan-out has more than fanout_watermark
// events waiting, or at least one connection is behind — its queue holds a quarter of its
// bound while its writes are not blocked (a client whose write is blocked is slow itself,
// and is closed instead of slowing everyone down). Lock-free; updated on the hot path.
class LoadGauge {
 public:
  explicit LoadGauge(std::int64_t fanout_watermark) : fanout_watermark_(fanout_watermark) {}
  void fanout_pending(std::int64_t delta) { fanout_.fetch_add(delta, std::memory_order_relaxed); }
  void behind(std::int64_t delta) { behind_.fetch_add(delta, std::memory_order_relaxed); }
  bool overloaded() const {
    return fanout_.load(std::memory_order_relaxed) > fanout_watermark_ || behind_.load(std::memory_order_relaxed) > 0;
  }
  std::int64_t behind_connections() const { return behind_.load(std::memory_order_relaxed); }

 private:
  std::int64_t fanout_watermark_;
  std::atomic<std::int64_t> fanout_{0}, behind_{0};
};

}  // namespace parley::api
