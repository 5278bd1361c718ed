#include "net/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "api/events_json.h"
#include "chat/room_order.h"
#include "chat/unread_tracker.h"

namespace parley::net {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using ConnPtr = std::shared_ptr<WsConnection>;

namespace {
template <class... F>
struct Visitor : F... {
  using F::operator()...;
};
template <class... F>
Visitor(F...) -> Visitor<F...>;
}  // namespace

struct Hub::Impl : std::enable_shared_from_this<Hub::Impl> {
  Impl(asio::io_context& ioc, asio::thread_pool& p, api::WsService& s, HubOptions o)
      : order(asio::make_strand(ioc)),
        timer(order),
        pool(p),
        svc(s),
        opts(o),
        sequencer({o.max_rooms, o.max_held_per_room, o.gap_hold}) {}

  asio::strand<asio::io_context::executor_type> order;  // processes events one at a time
  asio::steady_timer timer;                             // gap holds, on `order`
  asio::thread_pool& pool;
  api::WsService& svc;
  HubOptions opts;

  // on_event's bound.
  std::mutex pending_mu;
  std::condition_variable pending_cv;
  std::size_t pending = 0;
  bool stopped = false;

  // Everything below: under mu.
  struct UserConns {
    std::vector<ConnPtr> sidebars;
    std::vector<std::pair<Id, ConnPtr>> chatrooms;  // (room, connection)
    std::vector<ConnPtr> awaiting_snapshot;         // sidebars registered before the tracker loaded
    chat::UnreadTracker tracker;
    bool loading = false;
    // Which registration created this entry: a snapshot read for an earlier entry of the same
    // user (who left and came back while it was read) may predate events this one missed.
    std::uint64_t generation = 0;
  };
  mutable std::mutex mu;
  std::unordered_map<Id, UserConns> users;
  chat::RoomSequencer<chat::EventPtr> sequencer;
  std::size_t count = 0;
  std::uint64_t generations = 0;
  bool closing = false;
  bool timer_armed = false;

  // Every connection of u that receives events of room.
  template <class F>
  static void each_follower(UserConns& u, Id room, F&& f) {
    for (const auto& c : u.sidebars) f(c);
    for (const auto& [r, c] : u.chatrooms)
      if (r == room) f(c);
  }

  void send_badge(UserConns& u, const std::optional<chat::Badge>& b) {
    if (!b) return;
    auto ev = api::badge_event(*b);
    each_follower(u, b->room, [&](const ConnPtr& c) { c->deliver(ev); });
  }

  bool has_receiver(const std::vector<chat::MemberSeq>& members) const {
    for (const auto& m : members)
      if (users.count(m.user)) return true;
    return false;
  }

  // A message in seq order: new_message to every member's connections (echo to the sender's
  // other ones, nothing to the one that sent it), and the badges it changed.
  void deliver_message(const chat::MessageCreated& e) {
    Id room = e.message.room_id;
    api::OutEventPtr frame, echo;
    for (const auto& m : e.members) {
      auto it = users.find(m.user);
      if (it == users.end()) continue;
      UserConns& u = it->second;
      bool sender = m.user == e.message.sender_id;
      each_follower(u, room, [&](const ConnPtr& c) {
        if (!sender) {
          if (!frame) frame = api::new_message_event(e.message, false);
          c->deliver(frame);
        } else if (e.origin.empty() || c->connection_id() != e.origin) {
          if (!echo) echo = api::new_message_event(e.message, true);
          c->deliver(echo);
        }
      });
      send_badge(u, u.tracker.apply(room, e.message.seq, m.read_seq));
    }
  }

  void deliver_released(std::vector<chat::EventPtr>& released) {
    for (const auto& ev : released) deliver_message(std::get<chat::MessageCreated>(*ev));
    released.clear();
  }

  void process(const chat::EventPtr& ev) {
    std::lock_guard g(mu);
    std::vector<chat::EventPtr> released;
    std::visit(Visitor{
                   [&](const chat::MessageCreated& e) {
                     Id room = e.message.room_id;
                     if (!sequencer.knows(room) && !has_receiver(e.members)) return;  // nobody here needs it
                     sequencer.offer(room, e.message.seq, ev, Clock::now(), released);
                   },
                   [&](const chat::MessageRead& e) {
                     api::OutEventPtr frame;
                     for (Id m : e.members) {
                       auto it = users.find(m);
                       if (it == users.end()) continue;
                       if (!frame) frame = api::message_read_event(e);
                       each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
                     }
                     if (auto it = users.find(e.reader); it != users.end())
                       send_badge(it->second, it->second.tracker.apply(e.room, e.last_seq, e.newest_read.seq));
                   },
                   [&](const chat::MemberJoined& e) {
                     auto it = users.find(e.user);
                     if (it == users.end()) return;
                     send_badge(it->second, it->second.tracker.join(e.room, e.last_seq, e.read_seq));
                     sequencer.anchor(e.room, e.last_seq, released);
                   },
                   [&](const chat::MemberLeft& e) {
                     auto it = users.find(e.user);
                     if (it == users.end()) return;
                     it->second.tracker.leave(e.room, e.last_seq);
                     for (const auto& [r, c] : it->second.chatrooms)
                       if (r == e.room) c->kick(1008, "not a member");
                   },
               },
               *ev);
    deliver_released(released);
    arm_timer();
  }

  // Gap holds: wakes at the sequencer's deadline, fills what is due from storage.
  void arm_timer() {
    if (timer_armed) return;
    auto d = sequencer.deadline();
    if (!d) return;
    timer_armed = true;
    timer.expires_at(*d);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->on_timer();
    });
  }

  void on_timer() {
    std::lock_guard g(mu);
    timer_armed = false;
    std::vector<chat::EventPtr> released;
    auto gaps = sequencer.due(Clock::now(), released);
    deliver_released(released);
    for (const auto& gap : gaps) start_fill(gap);
    arm_timer();
  }

  void start_fill(chat::RoomSequencer<chat::EventPtr>::Gap gap) {
    spdlog::info("seq gap in room={} after={} before={}: filling from storage", gap.room, gap.after, gap.before);
    asio::post(pool, [self = shared_from_this(), gap] {
      api::WsService::Fill fill;
      try {
        fill = self->svc.fill(gap.room, gap.after, gap.before, self->opts.fill_max);
      } catch (const std::exception& e) {
        spdlog::warn("gap fill of room={} failed: {}", gap.room, e.what());
      }
      asio::post(self->order, [self, gap, fill = std::move(fill)] { self->filled(gap, fill); });
    });
  }

  void filled(const chat::RoomSequencer<chat::EventPtr>::Gap& gap, const api::WsService::Fill& fill) {
    std::lock_guard g(mu);
    for (const auto& m : fill.messages) {
      // No badges from a fill: the watermarks at that commit are unknown, and the held
      // message after the gap carries newer ones.
      api::OutEventPtr frame = api::new_message_event(m, false), echo;
      for (Id member : fill.members) {
        auto it = users.find(member);
        if (it == users.end()) continue;
        each_follower(it->second, gap.room, [&](const ConnPtr& c) {
          if (member != m.sender_id) return c->deliver(frame);
          if (!echo) echo = api::new_message_event(m, true);
          c->deliver(echo);
        });
      }
    }
    std::vector<chat::EventPtr> released;
    sequencer.filled(gap.room, gap.before, Clock::now(), released);
    deliver_released(released);
    arm_timer();
  }

  // The user's badge state from storage, read after their first connection registered.
  void start_load(Id user, std::uint64_t generation) {
    asio::post(pool, [self = shared_from_this(), user, generation] {
      std::optional<std::vector<chat::RoomBadge>> snap;
      try {
        snap = self->svc.badge_snapshot(user);
      } catch (const std::exception& e) {
        spdlog::warn("badge snapshot of user={} failed: {}", user, e.what());
      }
      std::lock_guard g(self->mu);
      self->loaded(user, generation, snap);
    });
  }

  void loaded(Id user, std::uint64_t generation, const std::optional<std::vector<chat::RoomBadge>>& snap) {
    auto it = users.find(user);
    if (it == users.end() || it->second.generation != generation) return;  // every connection left meanwhile
    UserConns& u = it->second;
    u.loading = false;
    if (!snap) {  // storage failed: the sockets that wait cannot start right
      for (const auto& c : u.awaiting_snapshot) c->kick(1011, "try again");
      u.awaiting_snapshot.clear();
      return;
    }
    auto changed = u.tracker.load(*snap);
    std::vector<api::OutEventPtr> badges;
    for (const auto& b : u.tracker.badges()) badges.push_back(api::badge_event(b));
    for (const auto& c : u.awaiting_snapshot) c->deliver_snapshot(badges);
    u.awaiting_snapshot.clear();
    for (Id room : changed)  // held back while loading: to the sockets already live
      if (auto b = u.tracker.badge(room)) {
        auto ev = api::badge_event(*b);
        for (const auto& [r, c] : u.chatrooms)
          if (r == room) c->deliver(ev);
      }
    std::vector<chat::EventPtr> released;
    for (const auto& s : *snap) sequencer.anchor(s.room, s.last_seq, released);
    deliver_released(released);
    arm_timer();
  }
};

Hub::Hub(asio::io_context& ioc, asio::thread_pool& pool, api::WsService& service, HubOptions opts)
    : impl_(std::make_shared<Impl>(ioc, pool, service, opts)) {
  impl_->opts.max_pending = std::max<std::size_t>(1, opts.max_pending);
}

Hub::~Hub() {
  std::lock_guard g(impl_->mu);
  impl_->timer.cancel();
}

void Hub::on_event(const chat::EventPtr& ev) {
  auto& im = *impl_;
  {
    std::unique_lock lk(im.pending_mu);
    im.pending_cv.wait(lk, [&] { return im.stopped || im.pending < im.opts.max_pending; });
    if (im.stopped) return;
    ++im.pending;
  }
  im.svc.load().fanout_pending(1);
  asio::post(im.order, [self = impl_, ev] {
    try {
      self->process(ev);
    } catch (const std::exception& e) {
      spdlog::error("event fan-out failed: {}", e.what());
    }
    self->svc.load().fanout_pending(-1);
    {
      std::lock_guard g(self->pending_mu);
      --self->pending;
    }
    self->pending_cv.notify_one();
  });
}

bool Hub::add(Id user, Id room, const std::shared_ptr<WsConnection>& c) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  if (im.closing) return false;
  auto [uit, fresh] = im.users.try_emplace(user);
  auto& u = uit->second;
  if (fresh) u.generation = ++im.generations;
  if (room == 0) {
    u.sidebars.push_back(c);
    if (u.tracker.loaded()) {
      std::vector<api::OutEventPtr> badges;
      for (const auto& b : u.tracker.badges()) badges.push_back(api::badge_event(b));
      c->deliver_snapshot(std::move(badges));
    } else {
      u.awaiting_snapshot.push_back(c);
    }
  } else {
    u.chatrooms.emplace_back(room, c);
  }
  if (!u.tracker.loaded() && !u.loading) {
    u.loading = true;
    im.start_load(user, u.generation);
  }
  ++im.count;
  return true;
}

void Hub::remove(Id user, Id room, const WsConnection* c) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  auto it = im.users.find(user);
  if (it == im.users.end()) return;
  auto& u = it->second;
  auto same = [c](const ConnPtr& p) { return p.get() == c; };
  std::size_t before = u.sidebars.size() + u.chatrooms.size();
  if (room == 0) {
    std::erase_if(u.sidebars, same);
    std::erase_if(u.awaiting_snapshot, same);
  } else {
    std::erase_if(u.chatrooms, [c](const auto& p) { return p.second.get() == c; });
  }
  im.count -= before - (u.sidebars.size() + u.chatrooms.size());
  if (u.sidebars.empty() && u.chatrooms.empty()) im.users.erase(it);
}

void Hub::anchor(Id room, chat::Seq seq) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  std::vector<chat::EventPtr> released;
  im.sequencer.anchor(room, seq, released);
  im.deliver_released(released);
}

void Hub::shutdown() {
  {
    std::lock_guard g(impl_->pending_mu);
    impl_->stopped = true;
  }
  impl_->pending_cv.notify_all();
}

std::size_t Hub::size() const {
  std::lock_guard g(impl_->mu);
  return impl_->count;
}

bool Hub::online(Id user) const {
  std::lock_guard g(impl_->mu);
  return impl_->users.count(user) != 0;
}

std::size_t Hub::pending() const {
  std::lock_guard g(impl_->pending_mu);
  return impl_->pending;
}

void Hub::close_all(std::uint16_t code, const std::string& reason) {
  std::vector<ConnPtr> targets;
  {
    std::lock_guard g(impl_->mu);
    impl_->closing = true;
    for (auto& [id, u] : impl_->users) {
      targets.insert(targets.end(), u.sidebars.begin(), u.sidebars.end());
      for (auto& [r, c] : u.chatrooms) targets.push_back(c);
    }
  }
  for (const auto& c : targets) c->kick(code, reason);
}

}  // namespace parley::net
