#include "chat/presence.h"

namespace parley::chat {

bool LocalPresenceLedger::here(Id user, TimeMs) {
  std::lock_guard g(mu_);
  Entry& e = entries_[user];
  e.connected = true;
  e.mark = ++counter_;  // a grace running ends without a settle
  if (e.announced_online) return false;
  e.announced_online = true;
  return true;
}

std::optional<PresenceMark> LocalPresenceLedger::gone(Id user, TimeMs) {
  std::lock_guard g(mu_);
  auto it = entries_.find(user);
  if (it == entries_.end() || !it->second.connected) return std::nullopt;
  it->second.connected = false;
  it->second.mark = ++counter_;
  return it->second.mark;
}

bool LocalPresenceLedger::settle(Id user, PresenceMark mark) {
  std::lock_guard g(mu_);
  auto it = entries_.find(user);
  if (it == entries_.end() || it->second.connected || it->second.mark != mark) return false;
  bool announce = it->second.announced_online;
  entries_.erase(it);  // offline and announced so: nothing to remember
  return announce;
}

bool LocalPresenceLedger::online(Id user) {
  std::lock_guard g(mu_);
  auto it = entries_.find(user);
  return it != entries_.end() && it->second.announced_online;
}

void LocalPresenceLedger::forget(Id user) {
  std::lock_guard g(mu_);
  entries_.erase(user);
}

std::size_t LocalPresenceLedger::size() const {
  std::lock_guard g(mu_);
  return entries_.size();
}

void PresenceGraces::start(Id user, PresenceMark mark, TimeMs closed_at, Time now) {
  cancel(user);
  Time at = now + grace_;
  by_user_[user] = Entry{mark, closed_at, at};
  by_due_.insert({at, user});
}

void PresenceGraces::cancel(Id user) {
  auto it = by_user_.find(user);
  if (it == by_user_.end()) return;
  by_due_.erase({it->second.at, user});
  by_user_.erase(it);
}

std::vector<PresenceGraces::Due> PresenceGraces::due(Time now) {
  std::vector<Due> out;
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    Id user = by_due_.begin()->second;
    by_due_.erase(by_due_.begin());
    auto it = by_user_.find(user);
    out.push_back(Due{user, it->second.mark, it->second.closed_at});
    by_user_.erase(it);
  }
  return out;
}

std::optional<PresenceGraces::Time> PresenceGraces::deadline() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

}  // namespace parley::chat
