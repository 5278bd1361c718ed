#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// Presence (CONTRACT.md "Presence"; docs/decisions.md "Presence"): a user is online while at
// least one of their connections is open on any instance. Two small pieces, with the time
// passed in so that tests need no sleeps:
// - PresenceLedger: the shared part, across instances (bus/redis_presence) or this instance
//   alone (LocalPresenceLedger). Told when an instance gets its first connection of a user
//   and when its last one closes, it says when a transition is to be announced: online at once,
//   offline only through settle() after the grace, and never the same status twice in a row.
// - PresenceGraces: this instance's graces running (a user whose last connection anywhere
//   closed here), each with the ledger's mark, due `grace` after the close.

// The mark of a grace: the ledger's per-user counter when the user's last connection anywhere
// closed. Any connection opened since moves the counter, so the grace's settle does nothing.
using PresenceMark = std::int64_t;

class PresenceLedger {
 public:
  virtual ~PresenceLedger() = default;
  // This instance's first connection of user opened: true when the user is to be announced
  // online (no status announced yet, or offline).
  virtual bool here(Id user, TimeMs now) = 0;
  // This instance's last connection of user closed: the grace's mark when no instance has a
  // connection of user any more (the grace starts now), nullopt when another one still has.
  virtual std::optional<PresenceMark> gone(Id user, TimeMs now) = 0;
  // The grace of mark ended: true when no connection of user opened anywhere since and the
  // user was announced online: to be announced offline now (and recorded so).
  virtual bool settle(Id user, PresenceMark mark) = 0;
  // The status announced last (false: offline, or never announced).
  virtual bool online(Id user) = 0;
  // Called every few seconds (the local ledger has nothing to do). offline: users whose graces
  // nobody else will settle (the instance that held their connections, or that ran their
  // grace, is gone), with when their last connection was seen. online: users connected here
  // whose status the shared ledger had lost (it was away or restarted) and now announces.
  // graces: users whose last connection was on an instance found gone: their grace starts
  // now, under the mark given, on the instance that found it.
  struct Sweep {
    std::vector<std::pair<Id, TimeMs>> offline;
    std::vector<Id> online;
    std::vector<std::pair<Id, PresenceMark>> graces;
  };
  virtual Sweep sweep(TimeMs /*now*/) { return {}; }
};

// The ledger of a single instance (and the fallback of the shared one while Redis is away).
// One entry per user with a connection here or a status announced online: bounded by the
// users with open connections (the connection caps) plus those in their grace. Thread-safe.
class LocalPresenceLedger final : public PresenceLedger {
 public:
  bool here(Id user, TimeMs now) override;
  std::optional<PresenceMark> gone(Id user, TimeMs now) override;
  bool settle(Id user, PresenceMark mark) override;
  bool online(Id user) override;
  // Forgets user (the shared ledger took over from this one).
  void forget(Id user);
  std::size_t size() const;

 private:
  struct Entry {
    bool connected = false;
    bool announced_online = false;
    PresenceMark mark = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<Id, Entry> entries_;
  PresenceMark counter_ = 0;  // one for every user: a mark is never reused
};

// This instance's running graces. One per user (a later close replaces it); at most the users
// whose last connection closed here within the grace.
class PresenceGraces {
 public:
  using Time = std::chrono::steady_clock::time_point;
  struct Due {
    Id user = 0;
    PresenceMark mark = 0;
    TimeMs closed_at = 0;  // when the last connection closed: the user's last_seen
    bool operator==(const Due&) const = default;
  };
  explicit PresenceGraces(std::chrono::milliseconds grace) : grace_(grace) {}
  void start(Id user, PresenceMark mark, TimeMs closed_at, Time now);
  // The user connected again here: their grace here ends without a settle.
  void cancel(Id user);
  // The graces that ended by now, in deadline order (forgotten).
  std::vector<Due> due(Time now);
  std::optional<Time> deadline() const;
  std::size_t size() const { return by_user_.size(); }

 private:
  struct Entry {
    PresenceMark mark = 0;
    TimeMs closed_at = 0;
    Time at{};
  };
  std::chrono::milliseconds grace_;
  std::map<Id, Entry> by_user_;
  std::set<std::pair<Time, Id>> by_due_;
};

}  // namespace parley::chat
