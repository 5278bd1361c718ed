#pragma once
#include <algorithm>
#include <chrono>
#include <limits>

namespace parley {

// A token bucket: holds up to `burst` tokens, gains `per_sec` tokens per second, and every
// take() spends one. The caller passes the time in, so tests need no sleeps and a caller that
// already read the clock does not read it again. It starts full. Not synchronized.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // burst below 1 is taken as 1 (a bucket that cannot hold one token would refuse
  // everything); per_sec <= 0 never refills.
  TokenBucket(double per_sec, double burst, Clock::time_point now = Clock::now())
      : per_sec_(per_sec), burst_(std::max(1.0, burst)), tokens_(burst_), at_(now) {}

  // Refills for the time since the last call, then spends one token if there is one.
  bool take(Clock::time_point now) {
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Refills for the time since the last call; whether a take() would succeed now (spends
  // nothing).
  bool ready(Clock::time_point now) {
    refill(now);
    return tokens_ >= 1.0;
  }

  // Seconds from the last take() until one token is there (0 when one is there already;
  // infinity when the bucket never refills).
  double seconds_until_token() const {
    if (tokens_ >= 1.0) return 0;
    if (per_sec_ <= 0) return std::numeric_limits<double>::infinity();
    return (1.0 - tokens_) / per_sec_;
  }

  double tokens() const { return tokens_; }

 private:
  void refill(Clock::time_point now) {
    if (now <= at_) return;  // a time from before the last call adds nothing
    double elapsed = std::chrono::duration<double>(now - at_).count();
    if (per_sec_ > 0) tokens_ = std::min(burst_, tokens_ + elapsed * per_sec_);
    at_ = now;
  }

  double per_sec_, burst_;
  double tokens_;
  Clock::time_point at_;
};

}  // namespace parley
