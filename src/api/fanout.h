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
  // > 0: the connection has, or must not get, every message of room up to this seq — a join's
  // last_seq (what was sent before the user joined is not theirs, even when a gap of the room
  // is filled from storage later, with the members of that moment).
  chat::Seq position = 0;
  std::string payload;  // the JSON text frame
};
using OutEventPtr = std::shared_ptr<const OutEvent>;

// Whether the server itself is behind, shared by the fan-out and the IO loop (which report
// their backlog and lag) and the entrances (REST and WebSocket sends), which refuse new sends
// while it is: load is shed where it enters, never by closing a reader that keeps up
// (CONTRACT.md "Keep-alive"). Behind means any of:
// - the fan-out has more than fanout_watermark events waiting;
// - the IO threads are late: a timer due every 20 ms runs more than lag_watermark_ms after
//   its time (the CPU is the limit: frames wait in the executor's queue to be written);
// - at least one connection in ten (and at least one) is behind: a quarter of its bound is
//   waiting right after a write completed (its client drains; the server's writers do not
//   keep up). A client whose write blocks does not count: it is slow itself and is closed as
//   a slow consumer instead of slowing everyone down. Lock-free.
class LoadGauge {
 public:
  explicit LoadGauge(std::int64_t fanout_watermark, std::int64_t lag_watermark_ms = 200)
      : fanout_watermark_(fanout_watermark), lag_watermark_ms_(lag_watermark_ms) {}
  void fanout_pending(std::int64_t delta) { fanout_.fetch_add(delta, std::memory_order_relaxed); }
  void io_lag_ms(std::int64_t ms) { lag_ms_.store(ms, std::memory_order_relaxed); }
  void behind(std::int64_t delta) { behind_.fetch_add(delta, std::memory_order_relaxed); }
  void connections(std::int64_t delta) { connections_.fetch_add(delta, std::memory_order_relaxed); }
  bool overloaded() const {
    auto behind = behind_.load(std::memory_order_relaxed);
    return fanout_.load(std::memory_order_relaxed) > fanout_watermark_ ||
           lag_ms_.load(std::memory_order_relaxed) > lag_watermark_ms_ ||
           (behind > 0 && behind * 10 >= connections_.load(std::memory_order_relaxed));
  }

 private:
  std::int64_t fanout_watermark_, lag_watermark_ms_;
  std::atomic<std::int64_t> fanout_{0}, lag_ms_{0}, behind_{0}, connections_{0};
};

}  // namespace parley::api
