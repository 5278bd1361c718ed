// The memory of the WebSocket connect cooldown (CONTRACT.md "WebSocket": a connect by the same
// user to the same endpoint and room sooner than --ws-cooldown-ms after the last *accepted*
// one is refused). Two implementations: LocalCooldown, a bounded table of this process (one
// instance), and SharedCooldown, which asks a store every instance shares (Redis, wired in
// app/) and falls back to its own local table while that store is unreachable. Neither knows
// of Redis or hiredis: the shared store is a function given by the caller.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/bounded_lru.h"

namespace parley::api {

class CooldownStore {
 public:
  virtual ~CooldownStore() = default;
  // Whether a connect under key may be accepted now. When it may, it counts as the last
  // accepted one (the cooldown starts again from now); a refused one changes nothing.
  // May block briefly (a network round trip): call it off the IO threads.
  virtual bool pass(const std::string& key, std::chrono::milliseconds cooldown) = 0;
};

// This process's table, bounded (least recently used keys out: an evicted key may connect at
// once). Thread-safe.
class LocalCooldown final : public CooldownStore {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LocalCooldown(std::size_t max_keys) : last_accepted_(max_keys) {}
  bool pass(const std::string& key, std::chrono::milliseconds cooldown) override {
    return pass_at(key, cooldown, Clock::now());
  }
  bool pass_at(const std::string& key, std::chrono::milliseconds cooldown, Clock::time_point now);
  // Whether key would pass at now; changes nothing.
  bool would_pass(const std::string& key, std::chrono::milliseconds cooldown, Clock::time_point now) const;
  // Records a connect accepted at now (by whoever decided it).
  void record(const std::string& key, Clock::time_point now);
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  BoundedLru<std::string, Clock::time_point> last_accepted_;
};

// What the shared store said about one claim.
enum class Claim { Passed, Refused, Unavailable };

// The cooldown shared by every instance (`--bus redis://`). claim(key, ttl) asks the shared
// store to take key for ttl if nobody holds it (Redis: SET key 1 PX ttl NX): Passed when it
// did, Refused when the key is held, Unavailable (with *problem) when the store could not
// answer (unreachable, slow, an error reply).
//
// Each decision first consults the local table, which holds every connect this instance
// accepted: a key it refuses is held in the shared store too (or was accepted here while the
// store was away), so a reconnect loop on one instance costs no round trip. A key the local
// table lets through is claimed in the shared store; a pass is recorded locally.
//
// While the store is unavailable, decisions are the local table's (per instance: a connect
// to another instance is not refused) and the store is tried again after a backoff
// (backoff_min doubling up to backoff_max; one caller probes, the others decide locally
// meanwhile); the outage is logged once when it begins and once when it ends.
class SharedCooldown final : public CooldownStore {
 public:
  using Clock = std::chrono::steady_clock;
  using ClaimFn = std::function<Claim(const std::string& key, std::chrono::milliseconds ttl, std::string* problem)>;
  struct Options {
    std::size_t max_keys = 100000;  // the local table
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{2000};
    std::string where = "shared store";  // for the log lines
  };
  struct Stats {
    bool up = true;                     // the shared store answered the last time it was asked
    std::uint64_t shared_passed = 0;    // decided by the shared store
    std::uint64_t shared_refused = 0;
    std::uint64_t local_refused = 0;    // refused by the local table before asking
    std::uint64_t fallback_passed = 0;  // decided by the local table while the store was away
    std::uint64_t fallback_refused = 0;
    std::uint64_t failures = 0;  // claims the store could not answer
    std::uint64_t outages = 0;   // times it went from up to unavailable
  };

  SharedCooldown(ClaimFn claim, Options opts, std::function<Clock::time_point()> now = Clock::now);
  bool pass(const std::string& key, std::chrono::milliseconds cooldown) override;
  Stats stats() const;

 private:
  std::chrono::milliseconds backoff(int failures) const;

  ClaimFn claim_;
  Options opts_;
  std::function<Clock::time_point()> now_;
  LocalCooldown local_;
  mutable std::mutex mu_;  // below
  bool up_ = true;
  bool probing_ = false;  // one caller is asking the store after a backoff
  int failed_in_row_ = 0;
  Clock::time_point retry_at_{};
  Stats stats_;
};

}  // namespace parley::api
