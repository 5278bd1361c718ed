#include "storage/storage_health.h"

#include <spdlog/spdlog.h>

namespace parley::storage {

namespace {
double seconds(StorageHealth::Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

StorageHealth::StorageHealth(Clock::duration log_interval, Hooks hooks)
    : interval_(log_interval), hooks_(std::move(hooks)) {}

void StorageHealth::write_ok(Clock::time_point now) {
  if (healthy()) return;  // the hot path: one atomic load
  std::lock_guard g(mu_);
  if (healthy_.load()) return;
  if (!logged_up_ || now - last_up_line_ >= interval_) {
    spdlog::info("storage recovered: writes succeed again after {:.1f} s; {} operations were refused meanwhile",
                 seconds(now - down_since_), in_outage_);
    logged_up_ = logged_ = true;
    last_up_line_ = last_line_ = now;
    since_line_ = 0;
  } else {
    unreported_ = true;  // flapping: the next summary tells
  }
  in_outage_ = 0;
  // The hook (metrics) first: whoever sees healthy() true sees the gauge say so too.
  if (hooks_.on_change) hooks_.on_change(true);
  healthy_.store(true, std::memory_order_release);
}

void StorageHealth::fault(std::size_t n, const std::string& detail, bool writes_failing, Clock::time_point now) {
  if (n && hooks_.on_failed) hooks_.on_failed(n);
  std::lock_guard g(mu_);
  since_line_ += n;
  last_detail_ = detail;
  bool was_healthy = healthy_.load();
  if (!was_healthy || writes_failing) in_outage_ += n;
  if (writes_failing && was_healthy) {
    down_since_ = now;
    if (hooks_.on_change) hooks_.on_change(false);
    healthy_.store(false, std::memory_order_release);
    if (!logged_down_ || now - last_down_line_ >= interval_) {
      spdlog::error("storage unavailable: {}; {} operations refused; answering 503 until a write succeeds "
                    "(next report in {:.0f} s at most)",
                    detail, since_line_, seconds(interval_));
      logged_down_ = logged_ = true;
      last_down_line_ = last_line_ = now;
      since_line_ = 0;
      return;
    }
    unreported_ = true;  // flapping: the next summary tells
  }
  if (!logged_ || now - last_line_ >= interval_) summary_locked(now);
}

void StorageHealth::tick(Clock::time_point now) {
  std::lock_guard g(mu_);
  if (healthy_.load() && since_line_ == 0 && !unreported_) return;
  if (logged_ && now - last_line_ < interval_) return;
  summary_locked(now);
}

bool StorageHealth::pending() const {
  if (!healthy()) return true;
  std::lock_guard g(mu_);
  return since_line_ > 0 || unreported_;
}

void StorageHealth::summary_locked(Clock::time_point now) {
  double span = logged_ ? seconds(now - last_line_) : 0.0;
  if (healthy_.load())
    spdlog::warn("storage faults: {} operations failed in the last {:.0f} s (writes succeed now); last: {}",
                 since_line_, span, last_detail_);
  else
    spdlog::warn("storage still unavailable after {:.0f} s: {} operations refused in the last {:.0f} s; last: {}",
                 seconds(now - down_since_), since_line_, span, last_detail_);
  logged_ = true;
  last_line_ = now;
  since_line_ = 0;
  unreported_ = false;
}

}  // namespace parley::storage
