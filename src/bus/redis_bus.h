// The Redis bus (`--bus redis://HOST:PORT`): several instances share committed events over
// Redis pub/sub. hiredis stays inside redis_bus.cpp; this header needs only the standard
// library.
//
// - Publishing: publish() delivers the event to this instance's receiver at once (local
//   latency stays that of LocalBus) and queues it for Redis; a publisher thread sends the
//   queue in pipelined batches, each event one PUBLISH to its one channel (bus/channels.h:
//   a room's, a user's or the broadcast one). The queue is bounded
//   (max_queued_events, max_queued_bytes); when full the oldest event is dropped (counted,
//   logged): remote receivers then recover it from storage (gap fill, resync).
// - Receiving: a subscriber thread holds one SUBSCRIBE connection: the broadcast channel and
//   the channel of every watched user and room. Payloads tagged with this instance are
//   skipped (they were delivered locally), repeated copies of one event (a batch sent again
//   after a broken link) are dropped (a bounded window of recent (instance, number) tags),
//   malformed ones are logged and dropped.
// - Outages: a PING every ping_interval on both connections; no answer within ping_timeout,
//   or any connection error, makes the bus unhealthy (reason in problem()) and calls
//   Link::Lost; it reconnects with exponential backoff and full jitter (backoff_min doubling
//   up to backoff_max), subscribes every watched user and room again, then calls Link::Restored.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bus/bus.h"

namespace parley::bus {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string prefix = "parley:";  // of every channel name
  // The publish queue: events waiting for Redis (also while it is away). Oldest dropped beyond.
  std::size_t max_queued_events = 10000;
  std::size_t max_queued_bytes = 64u << 20;
  std::size_t max_batch = 64;  // events per pipelined round trip
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds ping_interval{1000};
  std::chrono::milliseconds ping_timeout{3000};  // with ping_interval: a silent link is noticed within 4 s
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{2000};  // a returned Redis is used again within ~2 s
  std::size_t dedupe_window = 65536;             // recent event tags remembered by the receiver
};

// redis://HOST[:PORT][/] → options (port 6379 by default); nullopt and *error otherwise.
std::optional<RedisOptions> parse_redis_url(std::string_view url, std::string* error);

class RedisBus final : public Bus {
 public:
  explicit RedisBus(RedisOptions opts);
  ~RedisBus() override;

  void publish(chat::EventPtr event) override;
  void subscribe(Handler handler) override;
  void on_link(LinkHandler handler) override;
  void watch_user(Id user) override;
  void unwatch_user(Id user) override;
  void watch_room(Id room) override;
  void unwatch_room(Id room) override;
  bool healthy() const override;
  std::string problem() const override;
  void start() override;
  void stop() override;

  std::vector<std::pair<std::string, std::uint64_t>> counters() const override;
  std::uint64_t instance() const;
  struct Stats {
    std::uint64_t published = 0;   // events sent to Redis
    std::uint64_t dropped = 0;     // events dropped from a full publish queue
    std::uint64_t received = 0;    // events handed to the receiver from Redis
    std::uint64_t own = 0;         // own events skipped
    std::uint64_t duplicates = 0;  // extra copies skipped
    std::uint64_t malformed = 0;   // payloads that did not decode
    std::uint64_t connects = 0;    // successful subscriber (re)connections
    std::uint64_t ephemeral_dropped = 0;  // typing not queued: link down or queue half full
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::bus
