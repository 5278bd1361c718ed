#include "bus/redis_bus.h"

#include <hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "bus/channels.h"
#include "bus/hiredis_util.h"
#include "bus/event_codec.h"
#include "common/bounded_lru.h"

namespace parley::bus {
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::optional<RedisOptions> parse_redis_url(std::string_view url, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<RedisOptions> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme) return fail("--bus must be redis://HOST:PORT");
  std::string_view rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/@?#") != std::string_view::npos)
    return fail("--bus redis://HOST:PORT takes no user, database or options");
  RedisOptions o;
  auto colon = rest.rfind(':');
  std::string_view host = colon == std::string_view::npos ? rest : rest.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = rest.substr(colon + 1);
    int p = 0;
    if (port.empty() || port.size() > 5) return fail("--bus: bad port");
    for (char ch : port) {
      if (ch < '0' || ch > '9') return fail("--bus: bad port");
      p = p * 10 + (ch - '0');
    }
    if (p < 1 || p > 65535) return fail("--bus: bad port");
    o.port = p;
  }
  if (host.empty()) return fail("--bus: missing host");
  o.host = std::string(host);
  return o;
}

namespace {

using hiredis::Ctx;
using hiredis::Reply;
using hiredis::to_tv;

struct Tag {
  std::uint64_t instance, number;
  bool operator==(const Tag&) const = default;
};
struct TagHash {
  std::size_t operator()(const Tag& t) const { return std::hash<std::uint64_t>{}(t.instance * 0x9E3779B97F4A7C15ull ^ t.number); }
};

struct Queued {
  std::vector<std::string> args;  // PUBLISH channel payload
  std::size_t bytes = 0;
};

}  // namespace

struct RedisBus::Impl {
  explicit Impl(RedisOptions o) : opts(std::move(o)), seen(opts.dedupe_window) {
    std::random_device rd;
    std::uint64_t id = 0;
    while (id == 0) id = (std::uint64_t{rd()} << 32) ^ rd();
    instance = id;
    rng.seed((std::uint64_t{rd()} << 32) ^ rd());
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw std::runtime_error("eventfd failed");
  }
  ~Impl() { ::close(wake_fd); }

  RedisOptions opts;
  std::uint64_t instance = 0;
  std::atomic<std::uint64_t> numbers{0};
  Handler handler;
  LinkHandler link;

  mutable std::mutex mu;  // everything below up to the threads
  std::condition_variable pub_cv;
  std::deque<std::shared_ptr<Queued>> queue;
  std::size_t queued_bytes = 0;
  std::unordered_map<std::string, int> watched;  // channel → interest count (users', rooms')
  bool stopping = false;
  bool started = false;
  bool check_pub = false;  // the subscriber lost its link: the publisher checks its own now
  bool sub_ok = false, pub_ok = false;
  std::string sub_problem = "not connected to Redis yet", pub_problem = "not connected to Redis yet";
  std::mt19937_64 rng;

  std::atomic<std::uint64_t> published{0}, dropped{0}, received{0}, own{0}, duplicates{0}, malformed{0}, connects{0},
      ephemeral_dropped{0};

  int wake_fd = -1;
  BoundedLru<Tag, char, TagHash> seen;  // subscriber thread only
  std::thread sub_thread, pub_thread;

  // Counted interest in a channel: SUBSCRIBE on the first, UNSUBSCRIBE after the last.
  void watch(std::string channel);
  void unwatch(const std::string& channel);

  std::string where() const { return "redis " + opts.host + ":" + std::to_string(opts.port); }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }
  void drain_wake() {
    std::uint64_t v;
    while (::read(wake_fd, &v, sizeof v) > 0) {
    }
  }

  // Full jitter: a delay in [d/2, d] with d = min * 2^attempt, capped at max.
  std::chrono::milliseconds backoff(int attempt) {
    auto d = opts.backoff_min * (1LL << std::min(attempt, 20));
    if (d > opts.backoff_max) d = opts.backoff_max;
    std::lock_guard g(mu);
    std::uniform_int_distribution<long long> pick(d.count() / 2, d.count());
    return std::chrono::milliseconds(pick(rng));
  }

  Ctx connect(std::string& why) {
    Ctx c(redisConnectWithTimeout(opts.host.c_str(), opts.port, to_tv(opts.connect_timeout)));
    if (!c) {
      why = "cannot allocate a Redis context";
      return nullptr;
    }
    if (c->err) {
      why = where() + ": " + c->errstr;
      return nullptr;
    }
    redisSetTimeout(c.get(), to_tv(opts.command_timeout));
    redisEnableKeepAlive(c.get());
    return c;
  }

  bool is_stopping() {
    std::lock_guard g(mu);
    return stopping;
  }

  // ---- publisher ----

  void set_pub(bool ok, std::string why) {
    bool was;
    {
      std::lock_guard g(mu);
      was = pub_ok;
      pub_ok = ok;
      pub_problem = std::move(why);
      if (!ok && was) spdlog::warn("bus: publishing to {} failed: {}", where(), pub_problem);
    }
    if (ok && !was) spdlog::info("bus: publishing to {}", where());
  }

  // Sends the batch pipelined; false on a connection error (the batch is sent again later).
  bool send_batch(redisContext* c, const std::vector<std::shared_ptr<Queued>>& batch, std::string& why) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& q : batch) {
      argv.clear();
      lens.clear();
      for (const auto& a : q->args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
        why = where() + ": " + c->errstr;
        return false;
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK || !r) {
        why = where() + ": " + (c->err ? c->errstr : "no reply");
        return false;
      }
      Reply reply(static_cast<redisReply*>(r));
      if (reply->type == REDIS_REPLY_ERROR)  // not the link: retrying would fail the same way
        spdlog::error("bus: Redis refused a publish: {}", std::string(reply->str, reply->len));
      else
        ++published;
    }
    return true;
  }

  bool ping(redisContext* c, std::string& why) {
    Reply r(static_cast<redisReply*>(redisCommand(c, "PING")));
    if (!r) {
      why = where() + ": " + (c->err ? c->errstr : "no answer");
      return false;
    }
    return true;
  }

  void run_publisher() {
    Ctx c;
    int attempt = 0;
    auto last_ping = Clock::now();
    auto flush_until = Clock::time_point::max();  // after stop(): at most 1 s more (+ one command timeout)
    for (;;) {
      std::vector<std::shared_ptr<Queued>> batch;
      {
        std::unique_lock lk(mu);
        if (stopping && flush_until == Clock::time_point::max()) flush_until = Clock::now() + 1s;
        if (c) {
          pub_cv.wait_until(lk, last_ping + opts.ping_interval, [&] { return stopping || check_pub || !queue.empty(); });
          if (check_pub) last_ping = Clock::time_point{};  // ping at once (below, when idle)
          check_pub = false;
        }
        if (stopping && (queue.empty() || !c || Clock::now() > flush_until)) return;
        for (std::size_t i = 0; i < queue.size() && i < opts.max_batch; ++i) batch.push_back(queue[i]);
      }
      std::string why;
      if (!c) {
        c = connect(why);
        if (!c) {
          set_pub(false, why);
          auto d = backoff(attempt++);
          std::unique_lock lk(mu);
          pub_cv.wait_for(lk, d, [&] { return stopping; });
          if (stopping) return;  // not connected: nothing can be flushed
          continue;
        }
        attempt = 0;
        last_ping = Clock::now();
        if (!ping(c.get(), why)) {
          c.reset();
          set_pub(false, why);
          continue;
        }
        set_pub(true, "");
      }
      if (batch.empty()) {  // idle: check the link so that /readyz tells the truth
        if (Clock::now() - last_ping >= opts.ping_interval) {
          last_ping = Clock::now();
          if (!ping(c.get(), why)) {
            c.reset();
            set_pub(false, why);
          }
        }
        continue;
      }
      if (!send_batch(c.get(), batch, why)) {
        c.reset();
        set_pub(false, why);
        continue;  // reconnects (with backoff on failure) and sends the batch again
      }
      last_ping = Clock::now();
      std::lock_guard g(mu);
      // Only what is still at the front: a full queue may have dropped some meanwhile.
      for (const auto& q : batch)
        if (!queue.empty() && queue.front() == q) {
          queued_bytes -= q->bytes;
          queue.pop_front();
        }
    }
  }

  // ---- subscriber ----

  void set_sub(bool ok, std::string why) {
    bool was;
    {
      std::lock_guard g(mu);
      was = sub_ok;
      sub_ok = ok;
      sub_problem = std::move(why);
      if (!ok && was) check_pub = true;  // Redis went away: so did the publisher's connection, likely
    }
    if (!ok && was) pub_cv.notify_all();
    if (!ok && was) spdlog::warn("bus: subscription to {} lost: {}", where(), sub_problem);
    if (ok && !was) spdlog::info("bus: subscribed to {}", where());
  }

  // Appends SUBSCRIBE/UNSUBSCRIBE of channels, at most 512 a command.
  static bool append_many(redisContext* c, const char* cmd, const std::vector<std::string>& chans) {
    for (std::size_t i = 0; i < chans.size(); i += 512) {
      std::vector<const char*> argv{cmd};
      std::vector<std::size_t> lens{std::strlen(cmd)};
      for (std::size_t j = i; j < chans.size() && j < i + 512; ++j) {
        argv.push_back(chans[j].data());
        lens.push_back(chans[j].size());
      }
      if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) return false;
    }
    return true;
  }
  static bool flush(redisContext* c) {
    int done = 0;
    while (!done)
      if (redisBufferWrite(c, &done) != REDIS_OK) return false;
    return true;
  }

  void deliver(const char* data, std::size_t len) {
    std::string err;
    auto env = decode(std::string_view(data, len), &err);
    if (!env) {
      ++malformed;
      spdlog::warn("bus: dropped a malformed event from Redis ({} bytes): {}", len, err);
      return;
    }
    if (env->instance == instance) {
      ++own;
      return;
    }
    bool fresh = false;
    seen.get_or_insert(Tag{env->instance, env->number}, [] { return char{1}; }, &fresh);
    if (!fresh) {
      ++duplicates;
      return;
    }
    ++received;
    if (handler) handler(env->event);
  }

  // One connection's life: subscribe, then read and keep the subscriptions in step with the
  // watched users until an error or stop(). Returns the reason it ended ("" on stop).
  std::string session(redisContext* c) {
    std::unordered_set<std::string> subscribed;  // channels a SUBSCRIBE was sent for
    std::unordered_set<std::string> awaiting;    // channels of the initial subscription not confirmed yet
    std::unordered_set<std::string> announce;    // subscribed later: Link::Watching… when confirmed
    {
      std::vector<std::string> chans{broadcast_channel(opts.prefix)};
      {
        std::lock_guard g(mu);
        for (const auto& [ch, n] : watched) {
          subscribed.insert(ch);
          chans.push_back(ch);
        }
      }
      awaiting.insert(chans.begin(), chans.end());
      if (!append_many(c, "SUBSCRIBE", chans) || !flush(c)) return where() + ": " + c->errstr;
    }
    auto last_rx = Clock::now();
    auto next_ping = Clock::now() + opts.ping_interval;
    bool restored = false;
    for (;;) {
      auto now = Clock::now();
      if (now - last_rx > opts.ping_timeout) return where() + ": no answer for " + std::to_string(opts.ping_timeout.count()) + " ms";
      if (now >= next_ping) {
        if (redisAppendCommand(c, "PING") != REDIS_OK || !flush(c)) return where() + ": " + c->errstr;
        next_ping = now + opts.ping_interval;
      }
      pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_ping - Clock::now()).count();
      int n = ::poll(fds, 2, static_cast<int>(std::clamp<long long>(wait, 1, 1000)));
      if (n < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
      if (fds[1].revents & POLLIN) {
        drain_wake();
        std::vector<std::string> add, drop;
        {
          std::lock_guard g(mu);
          if (stopping) return "";
          for (const auto& [ch, cnt] : watched)
            if (subscribed.insert(ch).second) {
              add.push_back(ch);
              announce.insert(ch);
            }
          for (auto it = subscribed.begin(); it != subscribed.end();)
            if (!watched.count(*it)) {
              drop.push_back(*it);
              announce.erase(*it);
              it = subscribed.erase(it);
            } else {
              ++it;
            }
        }
        if ((!add.empty() && !append_many(c, "SUBSCRIBE", add)) || (!drop.empty() && !append_many(c, "UNSUBSCRIBE", drop)) ||
            !flush(c))
          return where() + ": " + c->errstr;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (redisBufferRead(c) != REDIS_OK) return where() + ": " + (c->err ? c->errstr : "connection closed");
        last_rx = Clock::now();
        for (;;) {
          void* r = nullptr;
          if (redisReaderGetReply(c->reader, &r) != REDIS_OK) return where() + ": protocol error";
          if (!r) break;
          Reply reply(static_cast<redisReply*>(r));
          if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING)
            continue;
          std::string_view kind(reply->element[0]->str, reply->element[0]->len);
          if (kind == "message" && reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_STRING) {
            deliver(reply->element[2]->str, reply->element[2]->len);
          } else if (kind == "subscribe" && reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_STRING) {
            std::string ch(reply->element[1]->str, reply->element[1]->len);
            if (!restored) {
              awaiting.erase(ch);
              if (awaiting.empty()) {
                restored = true;
                ++connects;
                set_sub(true, "");
                if (link) link(Link::Restored, 0);
              }
            } else if (announce.erase(ch)) {
              auto what = parse_channel(ch, opts.prefix);
              if (link && what.kind == ChannelOf::User) link(Link::Watching, what.id);
              if (link && what.kind == ChannelOf::Room) link(Link::WatchingRoom, what.id);
            }
          }
        }
      }
    }
  }

  void run_subscriber() {
    int attempt = 0;
    bool lost_told = false;  // Link::Lost once per outage (also when Redis is away from the start)
    for (;;) {
      if (is_stopping()) return;
      std::string why;
      Ctx c = connect(why);
      if (c) {
        std::uint64_t before = connects;
        why = session(c.get());
        if (why.empty()) return;  // stopped
        if (connects != before) {  // it was up: a new outage starts now
          attempt = 0;
          lost_told = false;
        }
      }
      set_sub(false, why);
      if (!lost_told) {
        lost_told = true;
        if (link) link(Link::Lost, 0);
      }
      c.reset();
      auto d = backoff(attempt++);
      spdlog::debug("bus: reconnecting to {} in {} ms", where(), d.count());
      pollfd fd{wake_fd, POLLIN, 0};
      auto until = Clock::now() + d;
      while (Clock::now() < until) {
        if (is_stopping()) return;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (::poll(&fd, 1, static_cast<int>(std::max<long long>(1, left))) > 0) drain_wake();
      }
    }
  }
};

RedisBus::RedisBus(RedisOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
RedisBus::~RedisBus() { stop(); }

void RedisBus::publish(chat::EventPtr event) {
  auto& im = *impl_;
  if (im.handler) im.handler(event);  // this instance's own receivers, at once
  const auto* up = std::get_if<chat::UploadProgress>(&*event);
  bool ephemeral = std::holds_alternative<chat::Typing>(*event) || (up && !up->final());
  // One payload (one tag) on every channel of the event: an instance subscribed to several
  // of them hands it to its hub once (the copies are dropped by tag).
  std::string payload = encode(*event, im.instance, ++im.numbers);
  auto channels = channels_for(*event, im.opts.prefix);
  std::vector<std::shared_ptr<Queued>> qs;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    auto q = std::make_shared<Queued>();
    q->args.reserve(3);
    q->args.emplace_back("PUBLISH");
    q->args.push_back(std::move(channels[i]));
    q->args.push_back(i + 1 == channels.size() ? std::move(payload) : payload);
    for (const auto& a : q->args) q->bytes += a.size();
    bytes += q->bytes;
    qs.push_back(std::move(q));
  }
  std::size_t dropped_now = 0;
  {
    std::lock_guard g(im.mu);
    if (im.stopping) return;
    // Ephemeral events never take a committed event's place in the queue: not queued while
    // the link is down (they would be stale when it returns) nor once it is half full.
    if (ephemeral && (!im.sub_ok || !im.pub_ok || im.queue.size() * 2 >= im.opts.max_queued_events ||
                      (im.queued_bytes + bytes) * 2 > im.opts.max_queued_bytes)) {
      ++im.ephemeral_dropped;
      return;
    }
    for (auto& q : qs) {
      while (!im.queue.empty() &&
             (im.queue.size() >= im.opts.max_queued_events || im.queued_bytes + q->bytes > im.opts.max_queued_bytes)) {
        im.queued_bytes -= im.queue.front()->bytes;
        im.queue.pop_front();
        ++dropped_now;
      }
      im.queued_bytes += q->bytes;
      im.queue.push_back(std::move(q));
    }
  }
  im.pub_cv.notify_one();
  if (dropped_now) {
    auto total = im.dropped += dropped_now;
    if (total == dropped_now || total % 1000 < dropped_now)  // the first and then every 1,000th
      spdlog::warn("bus: publish queue full ({} events / {} bytes): dropped the oldest ({} so far)",
                   im.opts.max_queued_events, im.opts.max_queued_bytes, total);
  }
}

void RedisBus::subscribe(Handler handler) { impl_->handler = std::move(handler); }
void RedisBus::on_link(LinkHandler handler) { impl_->link = std::move(handler); }

void RedisBus::Impl::watch(std::string channel) {
  bool first;
  {
    std::lock_guard g(mu);
    first = ++watched[std::move(channel)] == 1;
  }
  if (first) wake();
}

void RedisBus::Impl::unwatch(const std::string& channel) {
  bool last = false;
  {
    std::lock_guard g(mu);
    auto it = watched.find(channel);
    if (it == watched.end()) return;
    if (--it->second <= 0) {
      watched.erase(it);
      last = true;
    }
  }
  if (last) wake();
}

void RedisBus::watch_user(Id user) { impl_->watch(user_channel(impl_->opts.prefix, user)); }
void RedisBus::unwatch_user(Id user) { impl_->unwatch(user_channel(impl_->opts.prefix, user)); }
void RedisBus::watch_room(Id room) { impl_->watch(room_channel(impl_->opts.prefix, room)); }
void RedisBus::unwatch_room(Id room) { impl_->unwatch(room_channel(impl_->opts.prefix, room)); }

bool RedisBus::healthy() const {
  std::lock_guard g(impl_->mu);
  return impl_->sub_ok && impl_->pub_ok;
}

std::string RedisBus::problem() const {
  std::lock_guard g(impl_->mu);
  if (!impl_->sub_ok) return "bus: subscription: " + impl_->sub_problem;
  if (!impl_->pub_ok) return "bus: publishing: " + impl_->pub_problem;
  return "";
}

void RedisBus::start() {
  std::lock_guard g(impl_->mu);
  if (impl_->started || impl_->stopping) return;
  impl_->started = true;
  // spdlog's registry is created on first use: here, before two threads race to create it.
  spdlog::default_logger_raw();
  impl_->sub_thread = std::thread([im = impl_.get()] { im->run_subscriber(); });
  impl_->pub_thread = std::thread([im = impl_.get()] { im->run_publisher(); });
}

void RedisBus::stop() {
  {
    std::lock_guard g(impl_->mu);
    impl_->stopping = true;
  }
  impl_->pub_cv.notify_all();
  impl_->wake();
  if (impl_->pub_thread.joinable()) impl_->pub_thread.join();
  if (impl_->sub_thread.joinable()) impl_->sub_thread.join();
}

std::uint64_t RedisBus::instance() const { return impl_->instance; }

std::vector<std::pair<std::string, std::uint64_t>> RedisBus::counters() const {
  auto s = stats();
  std::size_t queued;
  {
    std::lock_guard g(impl_->mu);
    queued = impl_->queue.size();
  }
  return {{"published", s.published}, {"dropped", s.dropped},       {"received", s.received}, {"own", s.own},
          {"duplicate", s.duplicates}, {"malformed", s.malformed}, {"connects", s.connects}, {"queued", queued},
          {"ephemeral_dropped", s.ephemeral_dropped}};
}

RedisBus::Stats RedisBus::stats() const {
  auto& im = *impl_;
  return Stats{im.published, im.dropped,    im.received, im.own, im.duplicates, im.malformed, im.connects,
               im.ephemeral_dropped};
}

}  // namespace parley::bus
