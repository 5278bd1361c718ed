#pragma once
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

#include "common/bounded_lru.h"
#include "common/token_bucket.h"

namespace parley::api {

// Token buckets keyed by client (user id or IP). Bounded: at most max_keys buckets; the
// least recently used one is evicted (a fresh bucket is full, so eviction only forgives).
class RateLimiter {
 public:
  using Clock = TokenBucket::Clock;
  RateLimiter(double per_sec, double burst, std::size_t max_keys);

  // 0 when allowed; otherwise the whole seconds (>= 1) to wait.
  int acquire(const std::string& key, Clock::time_point now = Clock::now());
  bool enabled() const { return per_sec_ > 0; }
  std::size_t size() const;

 private:
  double per_sec_, burst_;
  mutable std::mutex mu_;
  BoundedLru<std::string, TokenBucket> buckets_;
};

}  // namespace parley::api
