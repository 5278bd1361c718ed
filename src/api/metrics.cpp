#include "api/metrics.h"

#include <sstream>

namespace parley::api {

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  std::lock_guard g(mu_);
  ++requests_[{route, method, status}];
  std::size_t i = 0;
  while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
  ++latency_[i];
  latency_sum_ += seconds;
  ++latency_count_;
}

void Metrics::observe_commit(std::size_t jobs) {
  std::lock_guard g(mu_);
  ++batch_[batch_bucket(jobs)];
  batch_sum_ += jobs;
  ++batch_count_;
}

namespace {
template <class Buckets, class Counts>
void histogram(std::ostringstream& o, const char* name, const Buckets& bounds, const Counts& counts, double sum,
               std::uint64_t count) {
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cum += counts[i];
    o << name << "_bucket{le=\"" << bounds[i] << "\"} " << cum << "\n";
  }
  o << name << "_bucket{le=\"+Inf\"} " << count << "\n"
    << name << "_sum " << sum << "\n"
    << name << "_count " << count << "\n";
}
}  // namespace

void Metrics::declare(const std::string& family, const std::string& type, const std::string& help) {
  std::lock_guard g(mu_);
  families_[family] = {type, help};
}

void Metrics::add(const std::string& series, double delta) {
  std::lock_guard g(mu_);
  series_[series] += delta;
}

void Metrics::set(const std::string& series, double value) {
  std::lock_guard g(mu_);
  series_[series] = value;
}

void Metrics::add_collector(std::function<void(Metrics&)> collect) { collectors_.push_back(std::move(collect)); }

std::string Metrics::render() const {
  for (const auto& c : collectors_) c(const_cast<Metrics&>(*this));
  std::ostringstream o;
  std::lock_guard g(mu_);
  o << "# HELP parley_http_requests_total HTTP requests by route pattern, method and status.\n"
       "# TYPE parley_http_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o << "parley_http_requests_total{route=\"" << std::get<0>(k) << "\",method=\"" << std::get<1>(k) << "\",status=\""
      << std::get<2>(k) << "\"} " << v << "\n";
  o << "# HELP parley_http_request_duration_seconds Time from request read to response ready.\n"
       "# TYPE parley_http_request_duration_seconds histogram\n";
  histogram(o, "parley_http_request_duration_seconds", kLatencyBuckets, latency_, latency_sum_, latency_count_);
  o << "# HELP parley_messages_stored_total Messages committed to storage.\n"
       "# TYPE parley_messages_stored_total counter\n"
       "parley_messages_stored_total "
    << messages_stored_.load() << "\n";
  o << "# HELP parley_db_commit_batch_size Write jobs per storage transaction (group commit).\n"
       "# TYPE parley_db_commit_batch_size histogram\n";
  histogram(o, "parley_db_commit_batch_size", kBatchBuckets, batch_, static_cast<double>(batch_sum_), batch_count_);
  o << "# HELP parley_ws_events_sent_total WebSocket frames written.\n"
       "# TYPE parley_ws_events_sent_total counter\n"
       "parley_ws_events_sent_total "
    << ws_frames_sent_.load() << "\n";
  {
    std::array<std::uint64_t, kBatchBuckets.size() + 1> writes{};
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < writes.size(); ++i) n += writes[i] = ws_writes_[i].load(std::memory_order_relaxed);
    o << "# HELP parley_ws_frames_per_write WebSocket data frames handed to a socket in one write.\n"
         "# TYPE parley_ws_frames_per_write histogram\n";
    // (The sum is the frames counted with these writes: parley_ws_events_sent_total.)
    histogram(o, "parley_ws_frames_per_write", kBatchBuckets, writes, static_cast<double>(ws_frames_sent_.load()), n);
  }
  o << "# HELP parley_ws_queue_high_water_events Largest outbound queue seen, in events.\n"
       "# TYPE parley_ws_queue_high_water_events gauge\n"
       "parley_ws_queue_high_water_events "
    << ws_queue_high_water_.load() << "\n";
  for (const auto& [family, th] : families_) {
    o << "# HELP " << family << " " << th.second << "\n# TYPE " << family << " " << th.first << "\n";
    for (auto it = series_.lower_bound(family); it != series_.end() && it->first.rfind(family, 0) == 0; ++it) {
      std::string_view rest = std::string_view(it->first).substr(family.size());
      if (!rest.empty() && rest[0] != '{') continue;  // another family sharing the prefix
      o << it->first << " " << it->second << "\n";
    }
  }
  return o.str();
}

}  // namespace parley::api
