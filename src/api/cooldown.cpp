#include "api/cooldown.h"

#include <spdlog/spdlog.h>

namespace parley::api {

// ---- LocalCooldown ----

// Counts from the last accepted connect: a refused one does not restart the clock.
bool LocalCooldown::pass_at(const std::string& key, std::chrono::milliseconds cooldown, Clock::time_point now) {
  std::lock_guard g(mu_);
  bool first = false;
  Clock::time_point& last = last_accepted_.get_or_insert(key, [now] { return now; }, &first);
  if (first) return true;
  if (now - last < cooldown) return false;
  last = now;
  return true;
}

bool LocalCooldown::would_pass(const std::string& key, std::chrono::milliseconds cooldown,
                               Clock::time_point now) const {
  std::lock_guard g(mu_);
  const Clock::time_point* last = last_accepted_.peek(key);
  return !last || now - *last >= cooldown;
}

void LocalCooldown::record(const std::string& key, Clock::time_point now) {
  std::lock_guard g(mu_);
  last_accepted_.get_or_insert(key, [now] { return now; }) = now;
}

std::size_t LocalCooldown::size() const {
  std::lock_guard g(mu_);
  return last_accepted_.size();
}

// ---- SharedCooldown ----

SharedCooldown::SharedCooldown(ClaimFn claim, Options opts, std::function<Clock::time_point()> now)
    : claim_(std::move(claim)), opts_(std::move(opts)), now_(std::move(now)), local_(opts_.max_keys) {}

std::chrono::milliseconds SharedCooldown::backoff(int failures) const {
  auto d = opts_.backoff_min * (1LL << std::min(std::max(failures - 1, 0), 20));
  return std::min<std::chrono::milliseconds>(d, opts_.backoff_max);
}

bool SharedCooldown::pass(const std::string& key, std::chrono::milliseconds cooldown) {
  auto now = now_();
  bool ask = false, probe = false;
  {
    std::lock_guard g(mu_);
    if (!local_.would_pass(key, cooldown, now)) {
      ++stats_.local_refused;
      return false;
    }
    if (up_) {
      ask = true;
    } else if (!probing_ && now >= retry_at_) {
      ask = probe = probing_ = true;
    }
  }
  if (ask) {
    std::string problem;
    Claim c = Claim::Unavailable;
    try {
      c = claim_(key, cooldown, &problem);  // a round trip: not under the lock
    } catch (const std::exception& e) {     // never leaves probing_ set
      problem = e.what();
    }
    std::lock_guard g(mu_);
    if (probe) probing_ = false;
    if (c != Claim::Unavailable) {
      if (!up_) {
        up_ = true;
        spdlog::info("ws cooldown: {} answers again; the cooldown is shared by every instance", opts_.where);
      }
      failed_in_row_ = 0;
      if (c == Claim::Refused) {
        ++stats_.shared_refused;
        return false;
      }
      ++stats_.shared_passed;
      local_.record(key, now_());
      return true;
    }
    ++stats_.failures;
    ++failed_in_row_;
    retry_at_ = now_() + backoff(failed_in_row_);
    if (up_) {
      up_ = false;
      ++stats_.outages;
      spdlog::warn("ws cooldown: {} unavailable ({}); each instance keeps its own cooldown until it is back",
                   opts_.where, problem);
    }
  }
  // The store is away: this instance's table decides (checked again: the lock was released).
  std::lock_guard g(mu_);
  now = now_();
  if (!local_.would_pass(key, cooldown, now)) {
    ++stats_.fallback_refused;
    return false;
  }
  local_.record(key, now);
  ++stats_.fallback_passed;
  return true;
}

SharedCooldown::Stats SharedCooldown::stats() const {
  std::lock_guard g(mu_);
  Stats s = stats_;
  s.up = up_;
  return s;
}

}  // namespace parley::api
