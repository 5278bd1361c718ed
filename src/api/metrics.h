#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace parley::api {

// Process metrics, rendered in the Prometheus text format at /metrics. Label sets are
// bounded: routes are patterns (not raw paths) and statuses are the few the API answers.
class Metrics {
 public:
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);
  void observe_commit(std::size_t jobs);
  void message_stored() { messages_stored_.fetch_add(1, std::memory_order_relaxed); }
  // Per-frame and per-event WebSocket figures: lock-free, they sit on the fan-out hot path.
  // One hand-over of `frames` data frames to a socket in one write (the kernel may take it in
  // pieces): counted as frames sent and in the frames-per-write histogram.
  void ws_write(std::size_t frames) {
    if (frames == 0) return;
    ws_frames_sent_.fetch_add(frames, std::memory_order_relaxed);
    ws_writes_[batch_bucket(frames)].fetch_add(1, std::memory_order_relaxed);
  }
  void ws_queue_depth(std::uint64_t events) {
    auto cur = ws_queue_high_water_.load(std::memory_order_relaxed);
    while (events > cur && !ws_queue_high_water_.compare_exchange_weak(cur, events, std::memory_order_relaxed)) {
    }
  }
  // Other series, by full name with labels ("parley_ws_connections{endpoint=\"sidebar\"}"):
  // declare() the metric family once at start-up, then add() (counters, gauges). Label sets
  // must stay bounded.
  void declare(const std::string& family, const std::string& type, const std::string& help);
  void add(const std::string& series, double delta);
  void set(const std::string& series, double value);  // gauges
  // Runs at every render(), before it: sets series whose values live elsewhere (the bus's
  // counters). Register before serving; it must not block.
  void add_collector(std::function<void(Metrics&)> collect);
  std::string render() const;

 private:
  static constexpr std::array<double, 12> kLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  static constexpr std::array<double, 9> kBatchBuckets{1, 2, 4, 8, 16, 32, 64, 128, 256};
  static std::size_t batch_bucket(std::size_t n) {  // the first bucket n fits in (the last: +Inf)
    std::size_t i = 0;
    while (i < kBatchBuckets.size() && static_cast<double>(n) > kBatchBuckets[i]) ++i;
    return i;
  }
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::array<std::uint64_t, kLatencyBuckets.size() + 1> latency_{};
  double latency_sum_ = 0;
  std::uint64_t latency_count_ = 0;
  std::array<std::uint64_t, kBatchBuckets.size() + 1> batch_{};
  std::uint64_t batch_sum_ = 0, batch_count_ = 0;
  std::atomic<std::uint64_t> messages_stored_{0};
  std::atomic<std::uint64_t> ws_frames_sent_{0};
  std::array<std::atomic<std::uint64_t>, kBatchBuckets.size() + 1> ws_writes_{};  // by frames per write
  std::atomic<std::uint64_t> ws_queue_high_water_{0};
  std::map<std::string, std::pair<std::string, std::string>> families_;  // family -> (type, help)
  std::map<std::string, double> series_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace parley::api
