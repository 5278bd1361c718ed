// Presence across instances (docs/decisions.md "Presence"): the shared count of a user's
// connections, kept in the Redis of `--bus`, with this instance's own ledger while Redis is
// away. Blocking calls (RedisKv): run them off the IO threads.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bus/redis_kv.h"
#include "chat/presence.h"

namespace parley::bus {

struct RedisPresenceOptions {
  std::string instance;                   // this process's id, unique among the instances
  std::chrono::milliseconds lease{6000};  // an instance not heard of for this long is gone
  std::chrono::milliseconds grace{5000};
  // A grace that its instance did not settle this long after its end is settled by a sweep
  // of any other instance (its instance is gone).
  std::chrono::milliseconds slack{2000};
  std::size_t sweep_limit = 1000;  // users one sweep announces offline at most (the rest: the next)
};

// Keys, under the prefix of --bus (default "parley:"):
// - pr:u:<user>  hash: i:<instance> = 1 for each instance with a connection of the user; s =
//   the status announced (1 online, 0 offline); g = the mark counter (moves at every first
//   connection on an instance and whenever the last one anywhere closes); z = when it did.
//   Kept without expiry while announced online, for a day once offline (then forgotten).
// - pr:i:<instance>  set: the users with a connection there (what to undo when it is gone).
// - pr:lease:<instance>  string with a TTL of `lease`, refreshed by every sweep (every lease/3).
// - pr:instances  set: the instances that hold leases or did.
// - pr:pending  sorted set: users in their grace, scored by when a sweep may settle them.
// Each transition is one Lua script (EVAL), so two instances never both decide one: only the
// count going 0 → 1 announces online when offline was announced, only the last close starts
// a grace, only the grace of the latest mark announces offline.
// Bounded: one hash per user online or offline for less than a day, one set entry per
// (instance, user) connected, one pending entry per user in their grace.
class RedisPresenceLedger final : public chat::PresenceLedger {
 public:
  RedisPresenceLedger(RedisKv& kv, RedisPresenceOptions opts);
  bool here(Id user, TimeMs now) override;
  std::optional<chat::PresenceMark> gone(Id user, TimeMs now) override;
  bool settle(Id user, chat::PresenceMark mark) override;
  bool online(Id user) override;
  // Refreshes this instance's lease, undoes the instances whose lease expired (their users
  // with no connection elsewhere start their grace now) and settles the graces past their
  // slack. Every lease/3. When this instance's own lease had expired too (Redis was away or
  // restarted: every lease may have), it undoes nobody this time (the others renew theirs
  // within one sweep) and counts its own users in Redis again, as after an outage.
  Sweep sweep(TimeMs now) override;
  // False while Redis is away and this instance's own ledger decides.
  bool shared() const { return !down_.load(); }

 private:
  // The script's reply, or nullopt after logging the failure (the caller falls back).
  std::optional<std::vector<std::int64_t>> run(const char* script, std::vector<std::string> args);

  RedisKv& kv_;
  RedisPresenceOptions opts_;
  void owe(Id user, TimeMs at);

  chat::LocalPresenceLedger local_;  // while Redis is away; its marks are negated
  std::atomic<bool> down_{false};
  // Under mu_. here_: the users with a connection here (counted again after an outage).
  // owed_: users whose last connection here closed while Redis was away: Redis still counts
  // this instance's connection until a sweep tells it. Each at most the users connected here.
  std::mutex mu_;
  std::unordered_set<Id> here_;
  std::unordered_map<Id, TimeMs> owed_;
};

}  // namespace parley::bus
