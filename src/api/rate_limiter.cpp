#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace parley::api {

RateLimiter::RateLimiter(double per_sec, double burst, std::size_t max_keys)
    : per_sec_(per_sec), burst_(std::max(1.0, burst)), max_keys_(std::max<std::size_t>(1, max_keys)) {}

int RateLimiter::acquire(const std::string& key, Clock::time_point now) {
  if (per_sec_ <= 0) return 0;
  std::lock_guard g(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      buckets_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    it = buckets_.emplace(key, Bucket{burst_, now, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    double elapsed = std::chrono::duration<double>(now - it->second.at).count();
    it->second.tokens = std::min(burst_, it->second.tokens + elapsed * per_sec_);
    it->second.at = now;
  }
  Bucket& b = it->second;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / per_sec_)));
}

std::size_t RateLimiter::size() const {
  std::lock_guard g(mu_);
  return buckets_.size();
}

}  // namespace parley::api
