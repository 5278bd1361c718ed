#pragma once
#include <chrono>
#include <cstddef>
#include <list>
#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// Per-room seq order at a receiver. Messages are published after their commit by whichever
// thread or instance committed them, so they may arrive out of seq order; this puts them
// back in order. A message that arrives before an earlier seq is held; when the earlier one
// comes, both are released in order; when it does not come within `hold`, the gap is
// reported to be filled from storage (the way resume does) and released after it.
//
// A room's position is anchored by a receiver that knows it: a connection that has read the
// room from storage after registering (its replay cursor or snapshot), or a join event.
// Until then its messages are held (the receivers are still catching up). A room without
// an anchor whose messages wait past `hold` is anchored blindly at its lowest held seq.
//
// T is what is released (the rendered event); plain logic, no threads, time passed in.
// Bounded: at most max_rooms rooms (least recently used without held messages forgotten
// first) and max_held messages held per room (beyond it the gap is due at once).
template <class T>
class RoomSequencer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    std::size_t max_rooms = 100000;
    std::size_t max_held = 10000;
    Clock::duration hold = std::chrono::milliseconds(200);
  };
  // Fill the messages with after < seq < before of room from storage.
  struct Gap {
    Id room = 0;
    Seq after = 0;
    Seq before = 0;
  };

  explicit RoomSequencer(Limits limits = {}) : limits_(limits) {}

  bool knows(Id room) const { return rooms_.count(room) != 0; }
  bool anchored(Id room) const {
    auto it = rooms_.find(room);
    return it != rooms_.end() && it->second.next > 0;
  }
  // The next seq the room expects (0: not anchored).
  Seq next(Id room) const {
    auto it = rooms_.find(room);
    return it == rooms_.end() ? 0 : it->second.next;
  }
  std::size_t rooms() const { return rooms_.size(); }
  std::size_t held() const { return held_total_; }

  // Offers the message of seq in room; appends the items now released, in seq order.
  void offer(Id room, Seq seq, T item, Clock::time_point now, std::vector<T>& out) {
    Room& r = touch(room);
    if (r.next > 0 && seq < r.next) return;  // a duplicate: already released
    if (r.next == seq) {
      out.push_back(std::move(item));
      ++r.next;
      release(r, out);
      if (!r.held.empty()) r.since = now;  // progress: the next gap starts waiting now
      return;
    }
    if (r.held.emplace(seq, std::move(item)).second) {
      ++held_total_;
      if (r.held.size() == 1) r.since = now;
    }
  }

  // A receiver has everything of room up to seq. The first anchor fixes the room's position;
  // what was held meanwhile is released in seq order (receivers drop what they already have).
  void anchor(Id room, Seq seq, std::vector<T>& out) {
    Room& r = touch(room);
    if (r.next > 0) return;
    r.next = seq + 1;
    while (!r.held.empty() && r.held.begin()->first < r.next) pop_front(r, out);
    release(r, out);
  }

  // Rooms whose oldest held message has waited past the hold (or that hold too many): the
  // gaps to fill now. A reported gap is not reported again until filled() is called.
  std::vector<Gap> due(Clock::time_point now, std::vector<T>& out) {
    std::vector<Gap> gaps;
    if (held_total_ == 0) return gaps;
    for (auto& [id, r] : rooms_) {
      if (r.held.empty() || r.filling) continue;
      if (now - r.since < limits_.hold && r.held.size() <= limits_.max_held) continue;
      if (r.next == 0) {  // nobody anchored it: start at what we have
        r.next = r.held.begin()->first;
        release(r, out);
        continue;
      }
      r.filling = true;
      gaps.push_back(Gap{id, r.next - 1, r.held.begin()->first});
    }
    return gaps;
  }

  // The fill of a gap failed: nothing moves; the gap is due again after another hold.
  void unfilled(Id room, Clock::time_point now) {
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return;
    it->second.filling = false;
    it->second.since = now;
  }

  // The messages before `before` have been delivered from storage: go on from there (a fill
  // that read only part of the gap passes the seq after the last one it delivered). Returns
  // the next gap to fill at once when behind() said the room goes further than what is here.
  std::optional<Gap> filled(Id room, Seq before, Clock::time_point now, std::vector<T>& out) {
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return std::nullopt;
    Room& r = it->second;
    r.filling = false;
    if (before > r.next) r.next = before;
    while (!r.held.empty() && r.held.begin()->first < r.next) {
      r.held.erase(r.held.begin());
      --held_total_;
    }
    release(r, out);
    if (!r.held.empty()) r.since = now;
    if (r.held.empty() && r.expect >= r.next) {
      r.filling = true;
      return Gap{room, r.next - 1, r.expect + 1};
    }
    return std::nullopt;
  }

  // Storage says room has messages up to last_seq (a snapshot read after a bus outage: the
  // events of some may be lost, and nothing held would reveal a gap at the end). Returns
  // the gap to fill now when the room is anchored, behind last_seq and nothing is held or
  // being filled; otherwise it is remembered and filled() reports it once the held messages
  // before it are out.
  std::optional<Gap> behind(Id room, Seq last_seq) {
    auto it = rooms_.find(room);
    if (it == rooms_.end() || it->second.next == 0) return std::nullopt;
    Room& r = it->second;
    if (last_seq < r.next) return std::nullopt;
    r.expect = std::max(r.expect, last_seq);
    if (r.filling || !r.held.empty()) return std::nullopt;
    r.filling = true;
    return Gap{room, r.next - 1, r.expect + 1};
  }

  // Nobody here follows room any more: its position is forgotten, so that a later follower
  // anchors it afresh instead of the messages sent meanwhile being read from storage as a
  // gap. Kept while it holds messages or a fill runs (they are released or filled first).
  void forget(Id room) {
    auto it = rooms_.find(room);
    if (it == rooms_.end() || it->second.filling || !it->second.held.empty()) return;
    lru_.erase(it->second.lru);
    rooms_.erase(it);
  }

  // The earliest time due() has something to do (nullopt: nothing is held).
  std::optional<Clock::time_point> deadline() const {
    std::optional<Clock::time_point> d;
    if (held_total_ == 0) return d;  // the usual case: nothing to walk
    for (const auto& [id, r] : rooms_)
      if (!r.held.empty() && !r.filling && (!d || r.since + limits_.hold < *d)) d = r.since + limits_.hold;
    return d;
  }

 private:
  struct Room {
    Seq next = 0;  // 0: not anchored yet
    std::map<Seq, T> held;
    Clock::time_point since{};  // when the oldest of held started waiting
    bool filling = false;
    Seq expect = 0;  // storage has messages up to here (behind())
    std::list<Id>::iterator lru;
  };

  Room& touch(Id room) {
    auto it = rooms_.find(room);
    if (it != rooms_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second;
    }
    if (rooms_.size() >= limits_.max_rooms) evict();
    lru_.push_front(room);
    Room& r = rooms_[room];
    r.lru = lru_.begin();
    return r;
  }
  void evict() {
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
      auto r = rooms_.find(*it);
      if (!r->second.held.empty()) continue;
      lru_.erase(std::next(it).base());
      rooms_.erase(r);
      return;
    }
  }
  void pop_front(Room& r, std::vector<T>& out) {
    out.push_back(std::move(r.held.begin()->second));
    r.held.erase(r.held.begin());
    --held_total_;
  }
  void release(Room& r, std::vector<T>& out) {
    while (!r.held.empty() && r.held.begin()->first == r.next) {
      pop_front(r, out);
      ++r.next;
    }
  }

  Limits limits_;
  std::unordered_map<Id, Room> rooms_;
  std::list<Id> lru_;
  std::size_t held_total_ = 0;
};

}  // namespace parley::chat
