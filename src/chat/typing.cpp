#include "chat/typing.h"

#include <algorithm>

namespace parley::chat {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// ---- TypingCoalescer ----

TypingTime TypingCoalescer::due_of(const Entry& e) const {
  if (e.pending) return e.last_sent + limits_.interval;  // the trailing start
  if (e.shown) return e.last_start + limits_.expiry;     // expired: forgotten
  return e.last_sent + limits_.interval;                 // stopped: remembered for the rate only
}

void TypingCoalescer::reindex(const Key& k, Entry& e) {
  by_due_.erase({e.due, k});
  e.due = due_of(e);
  by_due_.insert({e.due, k});
}

void TypingCoalescer::forget(std::map<Key, Entry>::iterator it) {
  by_due_.erase({it->second.due, it->first});
  entries_.erase(it);
}

TypingSignal TypingCoalescer::start_signal(const Key& k, const Entry& e, TypingTime now) const {
  // What is left of the last start's lifetime (the whole of it when it is the one sent now).
  auto left = duration_cast<milliseconds>(e.last_start + limits_.expiry - now);
  return TypingSignal{k.second, k.first, true, std::max(left, milliseconds(1))};
}

TypingCoalescer::Outcome TypingCoalescer::start(Id user, Id room, TypingTime now) {
  Key k{user, room};
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    if (entries_.size() >= limits_.max_entries) return Outcome{std::nullopt, true};
    it = entries_.emplace(k, Entry{}).first;
    Entry& e = it->second;
    e.last_sent = e.last_start = now;
    e.shown = true;
    e.due = due_of(e);
    by_due_.insert({e.due, k});
    return Outcome{start_signal(k, e, now), false};
  }
  Entry& e = it->second;
  e.last_start = now;
  if (!e.pending && now - e.last_sent >= limits_.interval) {
    e.last_sent = now;
    e.shown = true;
    reindex(k, e);
    return Outcome{start_signal(k, e, now), false};
  }
  e.pending = true;  // coalesced: goes out when the interval ends
  reindex(k, e);
  return Outcome{};
}

std::optional<TypingSignal> TypingCoalescer::stop(Id user, Id room, TypingTime now) {
  Key k{user, room};
  auto it = entries_.find(k);
  if (it == entries_.end()) return std::nullopt;  // nothing shown
  Entry& e = it->second;
  bool was_shown = e.shown && now < e.last_start + limits_.expiry;
  e.pending = false;
  e.shown = false;
  if (now >= e.last_sent + limits_.interval)
    forget(it);
  else
    reindex(k, e);
  if (!was_shown) return std::nullopt;
  return TypingSignal{room, user, false, milliseconds(0)};
}

std::optional<TypingSignal> TypingCoalescer::gone(Id user, Id room) {
  auto it = entries_.find({user, room});
  if (it == entries_.end()) return std::nullopt;
  bool was_shown = it->second.shown;
  forget(it);
  if (!was_shown) return std::nullopt;
  return TypingSignal{room, user, false, milliseconds(0)};
}

std::vector<Id> TypingCoalescer::rooms_of(Id user) const {
  std::vector<Id> out;
  for (auto it = entries_.lower_bound({user, 0}); it != entries_.end() && it->first.first == user; ++it)
    out.push_back(it->first.second);
  return out;
}

std::vector<TypingSignal> TypingCoalescer::due(TypingTime now) {
  std::vector<TypingSignal> out;
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    Key k = by_due_.begin()->second;
    auto it = entries_.find(k);
    Entry& e = it->second;
    if (e.pending) {
      e.pending = false;
      e.last_sent = now;
      e.shown = true;
      out.push_back(start_signal(k, e, now));
      reindex(k, e);
    } else {
      forget(it);  // expired (receivers end it themselves) or stopped long enough ago
    }
  }
  return out;
}

std::optional<TypingTime> TypingCoalescer::deadline() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

// ---- TypingBoard ----

bool TypingBoard::start(Id room, Id user, milliseconds ttl, TypingTime now) {
  Key k{room, user};
  auto until = now + std::clamp(ttl, milliseconds(0), limits_.expiry);  // a remote ttl never beyond ours
  auto it = until_.find(k);
  if (it == until_.end()) {
    if (until_.size() >= limits_.max_entries) return false;
    until_.emplace(k, until);
  } else {
    by_due_.erase({it->second, k});
    it->second = until;
  }
  by_due_.insert({until, k});
  return true;
}

bool TypingBoard::stop(Id room, Id user) {
  auto it = until_.find({room, user});
  if (it == until_.end()) return false;
  by_due_.erase({it->second, it->first});
  until_.erase(it);
  return true;
}

std::vector<TypingSignal> TypingBoard::due(TypingTime now) {
  std::vector<TypingSignal> out;
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    Key k = by_due_.begin()->second;
    by_due_.erase(by_due_.begin());
    until_.erase(k);
    out.push_back(TypingSignal{k.first, k.second, false, milliseconds(0)});
  }
  return out;
}

std::optional<TypingTime> TypingBoard::deadline() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

}  // namespace parley::chat
