// Storage health: whether writes currently reach the disk, and the rate-limited log of
// storage faults (disk full, read-only, moved, locked, I/O errors). See docs/decisions.md
// "Storage faults".
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace parley::storage {

// One per store. healthy() is lock-free (read by /readyz); the rest is called by the store's
// threads. Log lines: the first failure of an outage at once (error), then at most one
// summary line per interval with the count of failed operations (warn), and one line when a
// write succeeds again (info); a store that flaps logs each kind at most once per interval,
// the rest goes into the summary. Thread-safe.
class StorageHealth {
 public:
  using Clock = std::chrono::steady_clock;
  struct Hooks {
    std::function<void(bool healthy)> on_change;   // each transition
    std::function<void(std::size_t n)> on_failed;  // operations refused by a fault
  };
  explicit StorageHealth(Clock::duration log_interval, Hooks hooks = {});

  bool healthy() const { return healthy_.load(std::memory_order_acquire); }

  // The store's probe write committed: healthy again.
  void write_ok(Clock::time_point now);
  // n operations failed on a storage fault (n = 0 for a probe); writes_failing: it was a
  // write or probe that failed, so the store is unhealthy until a write commits again.
  void fault(std::size_t n, const std::string& detail, bool writes_failing, Clock::time_point now);
  // Emits a due summary line (called by the store's writer while anything is pending).
  void tick(Clock::time_point now);
  // Whether tick() may have something to say (unhealthy, or faults not yet summarized).
  bool pending() const;

 private:
  void summary_locked(Clock::time_point now);

  const Clock::duration interval_;
  Hooks hooks_;
  std::atomic<bool> healthy_{true};
  mutable std::mutex mu_;
  bool logged_ = false, logged_down_ = false, logged_up_ = false;  // which last_* are valid
  Clock::time_point last_line_, last_down_line_, last_up_line_;     // when lines were written
  bool unreported_ = false;  // a transition inside an interval, left to the next summary
  Clock::time_point down_since_;
  std::size_t since_line_ = 0;  // failed operations since the last line
  std::size_t in_outage_ = 0;   // failed operations since the store became unhealthy
  std::string last_detail_;
};

}  // namespace parley::storage
