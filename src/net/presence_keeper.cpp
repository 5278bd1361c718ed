#include "net/presence_keeper.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/time.h"

namespace parley::net {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct PresenceKeeper::Impl : std::enable_shared_from_this<PresenceKeeper::Impl> {
  Impl(asio::thread_pool& pool, chat::PresenceLedger& l, chat::ChatService& c, std::function<void(chat::EventPtr)> p,
       PresenceOptions o)
      : strand(asio::make_strand(pool)),
        grace_timer(strand),
        sweep_timer(strand),
        ledger(l),
        chat(c),
        publish(std::move(p)),
        opts(o),
        graces(o.grace) {}

  asio::strand<asio::thread_pool::executor_type> strand;
  asio::steady_timer grace_timer, sweep_timer;
  chat::PresenceLedger& ledger;
  chat::ChatService& chat;
  std::function<void(chat::EventPtr)> publish;
  PresenceOptions opts;
  // Everything below: on the strand only.
  chat::PresenceGraces graces;
  bool armed = false;
  Clock::time_point armed_at{};
  bool stopped = false;
  std::atomic<bool> closed{false};  // stop() was called: nothing more is posted

  void announce(Id user, bool online, std::optional<TimeMs> last_seen, TimeMs at) {
    chat::Presence p{user, online, last_seen, at, {}};
    p.audience = chat.co_member_ids(user, static_cast<int>(chat::Presence::kMaxPresenceAudience));
    publish(std::make_shared<const chat::Event>(std::move(p)));
  }

  void here(Id user) {
    graces.cancel(user);
    TimeMs now = now_ms();
    if (ledger.here(user, now)) announce(user, true, chat.last_seen(user), now);
  }

  void gone(Id user) {
    TimeMs now = now_ms();
    auto mark = ledger.gone(user, now);
    if (!mark) return;  // still connected on another instance
    graces.start(user, *mark, now, Clock::now());  // first: a storage fault must not keep them online
    arm();
    chat.set_last_seen(user, now);
  }

  void arm() {
    auto d = graces.deadline();
    if (stopped || !d || (armed && armed_at <= *d)) return;
    armed = true;
    armed_at = *d;
    grace_timer.expires_at(*d);
    grace_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      self->armed = false;
      for (const auto& due : self->graces.due(Clock::now()))
        self->guarded("grace", [&] {
          if (self->ledger.settle(due.user, due.mark)) self->announce(due.user, false, due.closed_at, now_ms());
        });
      self->arm();
    });
  }

  void sweep() {
    if (stopped || opts.sweep_every.count() <= 0) return;
    sweep_timer.expires_after(opts.sweep_every);
    sweep_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      self->guarded("sweep", [&] {
        TimeMs now = now_ms();
        auto sw = self->ledger.sweep(now);
        for (const auto& [user, mark] : sw.graces) {
          self->graces.start(user, mark, now, Clock::now());  // closed_at: when its instance was found gone
          self->guarded("offline", [&] { self->chat.set_last_seen(user, now); });
        }
        self->arm();
        for (const auto& [user, seen] : sw.offline)
          self->guarded("offline", [&] {
            self->chat.set_last_seen(user, seen);
            self->announce(user, false, seen, now_ms());
          });
        for (Id user : sw.online)
          self->guarded("online", [&] { self->announce(user, true, self->chat.last_seen(user), now_ms()); });
      });
      self->sweep();
    });
  }

  // Storage or the ledger failing costs that one announcement or last_seen (logged), never the
  // strand.
  template <class F>
  void guarded(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::warn("presence {} failed: {}", what, e.what());
    }
  }
};

PresenceKeeper::PresenceKeeper(asio::thread_pool& pool, chat::PresenceLedger& ledger, chat::ChatService& chat,
                               std::function<void(chat::EventPtr)> publish, PresenceOptions opts)
    : impl_(std::make_shared<Impl>(pool, ledger, chat, std::move(publish), opts)) {}

PresenceKeeper::~PresenceKeeper() = default;  // after stop() and the pool's join

void PresenceKeeper::connection(Id user, bool here) {
  if (impl_->closed.load()) return;  // shutting down: the ledger's lease and sweeps cover it
  asio::post(impl_->strand, [self = impl_, user, here] {
    self->guarded(here ? "online" : "offline", [&] {
      if (here)
        self->here(user);
      else
        self->gone(user);
    });
  });
}

void PresenceKeeper::start() {
  // The first connection here takes the lease itself (the ledger's here()).
  asio::post(impl_->strand, [self = impl_] { self->sweep(); });
}

void PresenceKeeper::stop() {
  if (impl_->closed.exchange(true)) return;
  // On the strand, so that no handler re-arms a timer after it (join the pool afterwards).
  asio::post(impl_->strand, [self = impl_] {
    self->stopped = true;
    self->grace_timer.cancel();
    self->sweep_timer.cancel();
  });
}

}  // namespace parley::net
