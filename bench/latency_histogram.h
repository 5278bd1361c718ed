// A fixed-size log-linear histogram of nanosecond latencies: 64 linear sub-buckets per power
// of two (under 1.6% error), ~30 KiB whatever the number of samples, mergeable.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace parley::bench {

class LatencyHistogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  void merge(const LatencyHistogram& o) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The q-quantile (0 < q <= 1) in ns: the middle of the bucket holding it.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) rank = total_ - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return std::min(max_, middle(i));
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    int e = 63 - std::countl_zero(v);  // >= kSubBits
    auto sub = (v >> (e - kSubBits)) & (kSub - 1);
    return static_cast<std::size_t>((e - kSubBits + 1) * kSub + sub);
  }
  static std::uint64_t middle(std::size_t i) {
    if (i < kSub) return i;
    int e = static_cast<int>(i / kSub) + kSubBits - 1;
    std::uint64_t sub = i % kSub;
    std::uint64_t lo = (kSub + sub) << (e - kSubBits);
    return lo + ((std::uint64_t{1} << (e - kSubBits)) >> 1);
  }
  std::array<std::uint64_t, (64 - kSubBits + 1) * kSub> counts_{};
  std::uint64_t total_ = 0, max_ = 0;
};

}  // namespace parley::bench
