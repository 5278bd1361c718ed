#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "api/fanout.h"

namespace parley::net {

// One connection's outbound queue, with a policy per event class (api::EventClass):
// - Message: never dropped. Beyond the bounds the queue reports Overflow (the connection
//   decides: a client whose write is blocked is a slow consumer; see ws_session.cpp);
//   beyond hard_factor times the bounds it reports HardOverflow whatever the client does.
// - Badge: at most one per room is pending; a newer one replaces it (the newest wins, so a
//   burst of 1,000 sends leaves one pending badge per room), and moves to the back.
// - Ephemeral: dropped when the queue is over its bounds, and dropped first: whatever pushes
//   the queue over its bounds, queued ephemeral events are discarded, oldest first, until it
//   is within them again (before a Message counts as overflow); never a Message or a Badge.
// Bounds are in events and bytes of payload; not thread-safe (the connection's strand owns it).
class OutboundQueue {
 public:
  struct Limits {
    std::size_t max_events = 1000;
    std::size_t max_bytes = 1024 * 1024;
    std::size_t hard_factor = 4;
  };
  enum class Push { Queued, Replaced, Dropped, Overflow, HardOverflow };

  explicit OutboundQueue(Limits limits) : limits_(limits) {}

  Push push(api::OutEventPtr ev);
  // Moves up to max_events ready frames (in order) into out; returns how many.
  std::size_t take(std::vector<api::OutEventPtr>& out, std::size_t max_events);
  void clear();

  bool empty() const { return events_ == 0; }
  std::size_t events() const { return events_; }
  std::size_t bytes() const { return bytes_; }
  bool over_bounds() const { return events_ > limits_.max_events || bytes_ > limits_.max_bytes; }

 private:
  bool over_hard() const {
    return events_ > limits_.max_events * limits_.hard_factor || bytes_ > limits_.max_bytes * limits_.hard_factor;
  }
  void drop_at(std::uint64_t pos);
  void drop_ephemeral();

  Limits limits_;
  std::deque<api::OutEventPtr> q_;                  // null entries: replaced or dropped, skipped on take
  std::uint64_t head_ = 0;                          // absolute position of q_.front()
  std::unordered_map<Id, std::uint64_t> badge_at_;  // room → absolute position of its pending badge
  std::vector<std::uint64_t> ephemeral_at_;         // absolute positions of queued ephemeral events
  std::size_t events_ = 0, bytes_ = 0;
};

}  // namespace parley::net
