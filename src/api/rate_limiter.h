#pragma once
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace parley::api {

// Token buckets keyed by client (user id or IP). Bounded: at most max_keys buckets; the
// least recently used one is evicted (a fresh bucket is full, so eviction only forgives).
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double per_sec, double burst, std::size_t max_keys);

  // 0 when allowed; otherwise the whole seconds (>= 1) to wait.
  int acquire(const std::string& key, Clock::time_point now = Clock::now());
  bool enabled() const { return per_sec_ > 0; }
  std::size_t size() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
    std::list<std::string>::iterator lru;
  };
  double per_sec_, burst_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::list<std::string> lru_;  // front: most recent
};

}  // namespace parley::api
