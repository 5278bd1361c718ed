#pragma once
#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <string_view>

#include "common/bounded_lru.h"
#include "common/token_bucket.h"

namespace parley::api {

// Brute-force protection for POST /api/auth/login: failed attempts are metered per username
// (against one account from many addresses) and per client IP (against many accounts from one
// address). Each key has a bucket of `failures_per_min` attempts that refills over a minute;
// only failures spend from it. While either bucket of an attempt is empty, the attempt is
// answered 429 with Retry-After before any password is checked (so it also costs no Argon2id
// time). A success resets nothing: an attacker who interleaves with the real user gains no
// tries. 0 turns that side off. Bounded: at most max_keys buckets per side, least recently
// used forgotten (a fresh bucket is full, so forgetting only forgives). Thread-safe.
class LoginGuard {
 public:
  using Clock = TokenBucket::Clock;
  LoginGuard(double per_user_per_min, double per_ip_per_min, std::size_t max_keys = 100000)
      : user_rate_(per_user_per_min), ip_rate_(per_ip_per_min), users_(max_keys), ips_(max_keys) {}

  // 0 when an attempt may go ahead; otherwise the whole seconds (>= 1) to wait.
  int check(std::string_view username, std::string_view ip, Clock::time_point now = Clock::now()) {
    std::lock_guard g(mu_);
    double wait = 0;
    if (auto* b = user_rate_ > 0 ? users_.touch(std::string(username)) : nullptr; b && !b->ready(now))
      wait = std::max(wait, b->seconds_until_token());
    if (auto* b = ip_rate_ > 0 ? ips_.touch(std::string(ip)) : nullptr; b && !b->ready(now))
      wait = std::max(wait, b->seconds_until_token());
    return wait > 0 ? std::max(1, static_cast<int>(std::ceil(wait))) : 0;
  }

  // A failed attempt: spends one from both buckets.
  void failed(std::string_view username, std::string_view ip, Clock::time_point now = Clock::now()) {
    std::lock_guard g(mu_);
    if (user_rate_ > 0) spend(users_, std::string(username), user_rate_, now);
    if (ip_rate_ > 0) spend(ips_, std::string(ip), ip_rate_, now);
  }

 private:
  static void spend(BoundedLru<std::string, TokenBucket>& m, const std::string& key, double per_min,
                    Clock::time_point now) {
    m.get_or_insert(key, [&] { return TokenBucket(per_min / 60.0, per_min, now); }).take(now);
  }

  double user_rate_, ip_rate_;
  std::mutex mu_;
  BoundedLru<std::string, TokenBucket> users_, ips_;
};

}  // namespace parley::api
