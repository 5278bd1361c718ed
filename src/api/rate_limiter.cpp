#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace parley::api {

RateLimiter::RateLimiter(double per_sec, double burst, std::size_t max_keys)
    : per_sec_(per_sec), burst_(burst), buckets_(max_keys) {}

int RateLimiter::acquire(const std::string& key, Clock::time_point now) {
  if (!enabled()) return 0;
  std::lock_guard g(mu_);
  TokenBucket& b = buckets_.get_or_insert(key, [&] { return TokenBucket(per_sec_, burst_, now); });
  if (b.take(now)) return 0;
  return std::max(1, static_cast<int>(std::ceil(b.seconds_until_token())));
}

std::size_t RateLimiter::size() const {
  std::lock_guard g(mu_);
  return buckets_.size();
}

}  // namespace parley::api
