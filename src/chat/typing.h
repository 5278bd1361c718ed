#pragma once
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// Typing indicators (CONTRACT.md "Typing"): never stored, so the whole rule set is the two
// small state machines below, with the time passed in (the hub runs them on its strand with
// one timer for both; docs/decisions.md "Typing").
using TypingTime = std::chrono::steady_clock::time_point;

struct TypingLimits {
  std::chrono::milliseconds expiry{6000};    // a start not refreshed ends this long after it
  std::chrono::milliseconds interval{1000};  // at most one start per (user, room) goes out per interval
  std::size_t max_entries = 100000;          // (user, room) pairs each table holds at once
};

// What a (user, room) tells the room: a start, which ends by itself after ttl unless
// refreshed, or a stop.
struct TypingSignal {
  Id room = 0;
  Id user = 0;
  bool start = false;
  std::chrono::milliseconds ttl{0};  // starts only
  bool operator==(const TypingSignal&) const = default;
};

// The typer's side (the instance whose socket got the frames): which of a user's typing
// frames go out to the room.
// - The first start goes out at once. Later starts within `interval` of the last start that
//   went out are coalesced: the last of them goes out when the interval ends (a trailing
//   start), with the ttl that is left of it, so the room's expiry is still `expiry` after the
//   user's last start. So at most one start per (user, room) per interval.
// - A stop goes out at once, but only when the room was shown a start that has not ended
//   (a pending coalesced start is cancelled instead). So in any interval: at most one start
//   and the stop that ends it.
// - The typer's instance sends no stop at expiry: every receiver ends a start itself after
//   its ttl (TypingBoard), which also covers an instance that died.
// An entry lives until its start has expired (at most `expiry`) or, once stopped, until the
// interval ends; at most max_entries at once (a start for a new pair beyond it is refused).
class TypingCoalescer {
 public:
  explicit TypingCoalescer(TypingLimits limits = {}) : limits_(limits) {}

  struct Outcome {
    std::optional<TypingSignal> send;  // what goes out now
    bool refused = false;              // the table is full: nothing goes out
  };
  Outcome start(Id user, Id room, TypingTime now);
  std::optional<TypingSignal> stop(Id user, Id room, TypingTime now);
  // The user's last connection that could type in room is gone: the stop if the room was
  // shown a start, and the pair is forgotten.
  std::optional<TypingSignal> gone(Id user, Id room);
  // The rooms the user has an entry for (typing, or recently stopped).
  std::vector<Id> rooms_of(Id user) const;
  // Trailing starts whose interval has ended, in deadline order; forgets expired entries.
  std::vector<TypingSignal> due(TypingTime now);
  std::optional<TypingTime> deadline() const;
  std::size_t size() const { return entries_.size(); }

 private:
  using Key = std::pair<Id, Id>;  // (user, room): a user's rooms are adjacent
  struct Entry {
    TypingTime last_sent{};   // the last start that went out
    TypingTime last_start{};  // the last start received
    bool pending = false;     // a start received after last_sent, not sent yet
    bool shown = false;       // the room was told start and not stop since
    TypingTime due{};
  };
  TypingTime due_of(const Entry& e) const;
  void reindex(const Key& k, Entry& e);
  void forget(std::map<Key, Entry>::iterator it);
  TypingSignal start_signal(const Key& k, const Entry& e, TypingTime now) const;

  TypingLimits limits_;
  std::map<Key, Entry> entries_;
  std::set<std::pair<TypingTime, Key>> by_due_;
};

// A receiver's side (every instance with a member of the room connected): who is shown as
// typing in which room, until a stop or the start's ttl (at most `expiry`) runs out. What to
// tell the local members: every start that arrives (the typer's side sends at most one per
// interval), a stop only when it ends a typing shown (so never a stop twice), and a stop for
// each typing that expired. At most max_entries at once: a start for a new pair beyond it is
// dropped (typing is ephemeral; it is shown again by the next start after room is made).
class TypingBoard {
 public:
  explicit TypingBoard(TypingLimits limits = {}) : limits_(limits) {}
  // Whether to show the start (false: the board is full and the pair is new).
  bool start(Id room, Id user, std::chrono::milliseconds ttl, TypingTime now);
  // Whether the stop ends a typing shown.
  bool stop(Id room, Id user);
  // The stops of the typings whose ttl ran out by now, in deadline order.
  std::vector<TypingSignal> due(TypingTime now);
  std::optional<TypingTime> deadline() const;
  bool typing(Id room, Id user) const { return until_.count({room, user}) != 0; }
  std::size_t size() const { return until_.size(); }

 private:
  using Key = std::pair<Id, Id>;  // (room, user)
  TypingLimits limits_;
  std::map<Key, TypingTime> until_;
  std::set<std::pair<TypingTime, Key>> by_due_;
};

}  // namespace parley::chat
