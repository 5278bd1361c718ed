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
#include <unordered_set>

#include "api/events_json.h"
#include "chat/room_order.h"
#include "chat/unread_tracker.h"
#include "common/bounded_lru.h"

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
        typing_timer(order),
        pool(p),
        svc(s),
        opts(o),
        sequencer({o.max_rooms, o.max_held_per_room, o.gap_hold}),
        typers(o.typing),
        board(o.typing) {}

  asio::strand<asio::io_context::executor_type> order;  // processes events one at a time
  asio::steady_timer timer;                             // gap holds, on `order`
  asio::steady_timer typing_timer;                      // typing: trailing starts and expiries, on `order`
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
    bool load_reading = false;  // the first load's storage read has begun (see Hub::watching)
    // Resync after a bus outage or a new subscription (Hub::resync): asked while the first
    // load runs (then done after it), one at a time, again if asked while one runs.
    bool resync_after_load = false;
    bool reloading = false;
    bool reload_again = false;
    // Which registration created this entry: a snapshot read for an earlier entry of the same
    // user (who left and came back while it was read) may predate events this one missed.
    std::uint64_t generation = 0;
    // The rooms this user makes the instance follow (room_users); see follow().
    std::unordered_set<Id> followed;
    // Per room, the newest membership change this user was told of (room_updated, or
    // room_left when left): one older than it that arrives late (two changes' events may come
    // in either order, over different channels) is not sent, it would undo the newer one.
    struct Told {
      TimeMs at = 0;
      bool left = false;
    };
    std::unordered_map<Id, Told> told;
  };
  mutable std::mutex mu;
  std::unordered_map<Id, UserConns> users;
  chat::RoomSequencer<chat::EventPtr> sequencer;
  // Room → the users here who follow it: the bus's room interest (HubOptions::room_interest)
  // and whom a new room subscription resyncs. Bounded by the connected users' rooms.
  std::unordered_map<Id, std::unordered_set<Id>> room_users;
  std::size_t count = 0;
  std::uint64_t generations = 0;
  bool closing = false;
  bool timer_armed = false;
  // Typing: the starts and stops of this instance's typers (what goes out), and who is shown
  // typing to the members here (from the Typing events, local or remote). Bounded by
  // HubOptions::typing.max_entries each.
  chat::TypingCoalescer typers;
  chat::TypingBoard board;
  bool typing_armed = false;
  Clock::time_point typing_at{};

  // Brings u.followed in step with the rooms the user needs here: the tracker's (once loaded)
  // and those of the user's chatroom sockets. O(rooms of the user): called on registrations,
  // loads, joins, leaves and resyncs, not per message.
  void follow(Id user, UserConns& u) {
    std::unordered_set<Id> want;
    if (u.tracker.loaded())
      for (Id r : u.tracker.rooms()) want.insert(r);
    for (const auto& [r, c] : u.chatrooms) want.insert(r);
    for (Id r : want)
      if (!u.followed.count(r)) {
        auto& us = room_users[r];
        if (us.empty() && opts.room_interest) opts.room_interest(r, true);
        us.insert(user);
      }
    for (Id r : u.followed)
      if (!want.count(r)) unfollow(r, user);
    u.followed = std::move(want);
  }
  void unfollow(Id room, Id user) {
    auto it = room_users.find(room);
    if (it == room_users.end()) return;
    it->second.erase(user);
    if (!it->second.empty()) return;
    room_users.erase(it);
    if (opts.room_interest) opts.room_interest(room, false);
    // Its events stop coming: the next follower starts from its own read of the room.
    sequencer.forget(room);
    if (!sequencer.knows(room)) parked_reads.erase(room);
  }

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
  // The same within one event's fan-out: members whose badge is the same state (in a room
  // where nobody has read yet, all of them) share one rendered frame (api::BadgeFrames).
  void send_badge(UserConns& u, const std::optional<chat::Badge>& b, api::BadgeFrames& frames) {
    if (!b) return;
    const auto& ev = frames.get(*b);
    each_follower(u, b->room, [&](const ConnPtr& c) { c->deliver(ev); });
  }

  bool has_receiver(const std::vector<chat::MemberSeq>& members) const {
    for (const auto& m : members)
      if (users.count(m.user)) return true;
    return false;
  }

  // A sidebar's snapshot: the badge of every room of the user.
  static std::vector<api::OutEventPtr> snapshot_frames(const chat::UnreadTracker& t) {
    std::vector<api::OutEventPtr> out;
    for (const auto& b : t.badges()) out.push_back(api::badge_event(b));
    return out;
  }

  // The badges a message changes, for the members connected here.
  void apply_badges(const chat::MessageCreated& e) {
    api::BadgeFrames frames;
    for (const auto& m : e.members)
      if (auto it = users.find(m.user); it != users.end())
        send_badge(it->second,
                   it->second.tracker.apply(e.message.room_id, e.message.seq, m.read_seq, m.user != e.message.sender_id),
                   frames);
  }

  // new_message of m to every member's connections here: the echo copy to the sender's
  // connections but origin (the one that sent it, which gets the ack), the plain copy to the
  // others; each rendered once. user_of gives a member's user id.
  template <class Members, class UserOf>
  void send_message_frames(const chat::Message& m, const Members& members, UserOf user_of, std::string_view origin) {
    api::OutEventPtr frame, echo;
    for (const auto& member : members) {
      Id user = user_of(member);
      auto it = users.find(user);
      if (it == users.end()) continue;
      each_follower(it->second, m.room_id, [&](const ConnPtr& c) {
        if (user != m.sender_id) {
          if (!frame) frame = api::new_message_event(m, false);
          c->deliver(frame);
        } else if (origin.empty() || c->connection_id() != origin) {
          if (!echo) echo = api::new_message_event(m, true);
          c->deliver(echo);
        }
      });
    }
  }

  // A message in seq order: its frames, then the badges it changed.
  void deliver_message(const chat::MessageCreated& e) {
    send_message_frames(
        e.message, e.members, [](const chat::MemberSeq& ms) { return ms.user; }, e.origin);
    apply_badges(e);
  }

  void deliver_released(std::vector<chat::EventPtr>& released) {
    Id last_room = 0;
    for (const auto& ev : released) {
      const auto& e = std::get<chat::MessageCreated>(*ev);
      deliver_message(e);
      if (e.message.room_id != last_room) release_parked(last_room = e.message.room_id);
    }
    released.clear();
  }

  // message_read to the members' connections and the reader's badge.
  void deliver_read(const chat::MessageRead& e) {
    api::OutEventPtr frame;
    for (Id m : e.members) {
      auto it = users.find(m);
      if (it == users.end()) continue;
      if (!frame) frame = api::message_read_event(e);
      each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
    }
    if (auto it = users.find(e.reader); it != users.end())
      send_badge(it->second, it->second.tracker.apply(e.room, e.last_seq, e.newest_read.seq));
  }

  // message_delivered to every member's connections (the user's own included: their other
  // devices learn that the messages reached one of them).
  // Events of one room reach the hub in any order (docs/decisions.md "Events are ordered by
  // the receiver"): one that is not above the newest delivered watermark already sent for its
  // (room, user) is stale and goes nowhere, so members see each watermark only move forward.
  struct RoomUserHash {
    std::size_t operator()(const std::pair<Id, Id>& k) const noexcept {
      return std::hash<Id>()(k.first) * 1000003u ^ std::hash<Id>()(k.second);
    }
  };
  static constexpr std::size_t kMaxDeliveredMarks = 65536;  // (room, user) pairs; beyond, the oldest forgotten
  BoundedLru<std::pair<Id, Id>, chat::Seq, RoomUserHash> delivered_sent{kMaxDeliveredMarks};

  void deliver_delivered(const chat::MessageDelivered& e) {
    chat::Seq& sent = delivered_sent.get_or_insert({e.room, e.user}, [] { return chat::Seq{-1}; });
    if (e.up_to_seq <= sent) return;
    sent = e.up_to_seq;
    api::OutEventPtr frame;
    for (Id m : e.members) {
      auto it = users.find(m);
      if (it == users.end()) continue;
      if (!frame) frame = api::message_delivered_event(e);
      each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
    }
  }

  // reaction to every member's connections (the reactor's own included, like delivered).
  // A change not newer than the last one sent for its (message, user, emoji) is stale (an add
  // and a remove through two instances may arrive swapped: the row's `at` orders them) and
  // goes nowhere, so members end on the stored state.
  struct ReactionKey {
    Id message = 0;
    Id user = 0;
    std::string emoji;
    bool operator==(const ReactionKey&) const = default;
  };
  struct ReactionKeyHash {
    std::size_t operator()(const ReactionKey& k) const noexcept {
      return (std::hash<Id>()(k.message) * 1000003u ^ std::hash<Id>()(k.user)) * 31u ^ std::hash<std::string>()(k.emoji);
    }
  };
  static constexpr std::size_t kMaxReactionMarks = 65536;  // (message, user, emoji) keys; beyond, the oldest forgotten
  BoundedLru<ReactionKey, TimeMs, ReactionKeyHash> reaction_sent{kMaxReactionMarks};

  void deliver_reaction(const chat::ReactionChanged& e) {
    TimeMs& sent = reaction_sent.get_or_insert({e.message, e.user, e.emoji}, [] { return TimeMs{-1}; });
    if (e.at <= sent) return;
    sent = e.at;
    api::OutEventPtr frame;
    for (Id m : e.members) {
      auto it = users.find(m);
      if (it == users.end()) continue;
      if (!frame) frame = api::reaction_event(e);
      each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
    }
  }

  // A parked event: a MessageRead, a MessageDelivered (their room's last_seq at commit) or a
  // ReactionChanged (its message's seq): it waits until the messages up to that seq are out.
  static chat::Seq parked_last_seq(const chat::Event& ev) {
    if (const auto* r = std::get_if<chat::MessageRead>(&ev)) return r->last_seq;
    if (const auto* x = std::get_if<chat::ReactionChanged>(&ev)) return x->seq;
    return std::get<chat::MessageDelivered>(ev).last_seq;
  }
  void deliver_parked(const chat::Event& ev) {
    if (const auto* r = std::get_if<chat::MessageRead>(&ev)) return deliver_read(*r);
    if (const auto* x = std::get_if<chat::ReactionChanged>(&ev)) return deliver_reaction(*x);
    deliver_delivered(std::get<chat::MessageDelivered>(ev));
  }
  // A watermark event in a room past what the sequencer released waits until it is out
  // (in the order they came), or a member would hear of a read or delivery before the
  // message: a read's badge (count down) would come before the message's (count up).
  void park_or_deliver(Id room, chat::Seq last_seq, const chat::EventPtr& ev) {
    if (sequencer.anchored(room) && last_seq >= sequencer.next(room)) {
      auto& parked = parked_reads[room];
      if (parked.size() >= kMaxParkedReads) {
        deliver_parked(*parked.front());
        parked.erase(parked.begin());
      }
      parked.push_back(ev);
      return;
    }
    deliver_parked(*ev);
  }

  // A read of a message this instance has not released yet waits for it, so that the
  // message's badge (count up) comes before the read's (count down), as they happened.
  // Delivered events wait the same way, in one queue with the reads of their room.
  static constexpr std::size_t kMaxParkedReads = 1000;  // per room; beyond, the oldest go at once
  std::unordered_map<Id, std::vector<chat::EventPtr>> parked_reads;
  void release_parked(Id room) {
    auto it = parked_reads.find(room);
    if (it == parked_reads.end()) return;
    chat::Seq next = sequencer.next(room);
    std::vector<chat::EventPtr> keep;
    for (auto& ev : it->second) {
      if (next == 0 || parked_last_seq(*ev) < next)
        deliver_parked(*ev);
      else
        keep.push_back(std::move(ev));
    }
    if (keep.empty())
      parked_reads.erase(it);
    else
      it->second = std::move(keep);
  }

  // typing to every connection here of the room's members but the typer (all of theirs).
  void deliver_typing(Id room, Id typer, bool start) {
    auto ru = room_users.find(room);
    if (ru == room_users.end()) return;
    api::OutEventPtr frame;
    for (Id user : ru->second) {
      if (user == typer) continue;
      auto it = users.find(user);
      if (it == users.end()) continue;
      if (!frame) frame = api::typing_event(room, typer, start);
      each_follower(it->second, room, [&](const ConnPtr& c) { c->deliver(frame); });
    }
  }

  // presence to every connection here of the users in the audience. Events of one user come
  // from any instance in any order: one older than the newest seen for the user, or of the
  // status sent last, goes nowhere (never the same status twice in a row; the newest wins).
  struct PresenceSent {
    TimeMs at = -1;
    bool online = false;
  };
  static constexpr std::size_t kMaxPresenceSent = 65536;  // users; beyond, the oldest forgotten
  BoundedLru<Id, PresenceSent> presence_sent{kMaxPresenceSent};
  void deliver_presence(const chat::Presence& e) {
    bool inserted = false;
    PresenceSent& last = presence_sent.get_or_insert(e.user, [] { return PresenceSent{}; }, &inserted);
    bool stale = !inserted && (e.at < last.at || e.online == last.online);
    last.at = std::max(last.at, e.at);
    if (stale) return;
    last.online = e.online;
    api::OutEventPtr frame;
    for (Id m : e.audience) {
      auto it = users.find(m);
      if (it == users.end() || m == e.user) continue;
      if (!frame) frame = api::presence_event(e);
      for (const auto& c : it->second.sidebars) c->deliver(frame);
      for (const auto& [r, c] : it->second.chatrooms) c->deliver(frame);
    }
  }

  static chat::EventPtr typing_of(const chat::TypingSignal& s) {
    return std::make_shared<const chat::Event>(chat::Typing{s.room, s.user, s.start, s.ttl.count()});
  }
  // Under mu, so that what goes out keeps the order in which it was decided (a trailing start
  // never overtakes the stop after it). Safe: publishing only hands off (the bus's queue, and
  // on_event, which never waits for a Typing event and takes no lock of ours but pending_mu).
  void publish_typing(const std::vector<chat::TypingSignal>& out) {
    for (const auto& s : out) {
      if (opts.publish)
        opts.publish(typing_of(s));
      else
        on_event_typing(typing_of(s));
    }
  }
  void on_event_typing(const chat::EventPtr& ev);
  void remove(Id user, Id room, const WsConnection* c, std::vector<chat::TypingSignal>& typing_out);

  // One timer for both typing tables: the earliest of their deadlines. A wait replaced by an
  // earlier one ends with operation_aborted and does nothing.
  void arm_typing() {
    std::optional<Clock::time_point> d = typers.deadline();
    if (auto b = board.deadline(); b && (!d || *b < *d)) d = b;
    if (!d || (typing_armed && typing_at <= *d)) return;
    typing_armed = true;
    typing_at = *d;
    typing_timer.expires_at(*d);
    typing_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      self->on_typing_timer();
    });
  }

  void on_typing_timer() {
    std::lock_guard g(mu);
    typing_armed = false;
    auto now = Clock::now();
    for (const auto& s : board.due(now)) deliver_typing(s.room, s.user, false);  // expired: stop
    publish_typing(typers.due(now));                                             // trailing starts
    arm_typing();
  }

  void process(const chat::EventPtr& ev) {
    std::lock_guard g(mu);
    std::vector<chat::EventPtr> released;
    std::visit(Visitor{
                   [&](const chat::MessageCreated& e) {
                     Id room = e.message.room_id;
                     if (!sequencer.knows(room) && !has_receiver(e.members)) return;  // nobody here needs it
                     if (sequencer.anchored(room) && e.message.seq < sequencer.next(room)) {
                       // Late: its frame went out (or the sockets read it from storage), but
                       // trackers loaded before its commit still need its badge state.
                       apply_badges(e);
                       return;
                     }
                     sequencer.offer(room, e.message.seq, ev, Clock::now(), released);
                   },
                   [&](const chat::MessageRead& e) { park_or_deliver(e.room, e.last_seq, ev); },
                   [&](const chat::MessageDelivered& e) { park_or_deliver(e.room, e.last_seq, ev); },
                   [&](const chat::ReactionChanged& e) { park_or_deliver(e.room, e.seq, ev); },
                   [&](const chat::MemberJoined& e) {
                     auto it = users.find(e.user);
                     if (it == users.end()) return;
                     // The join's badge is the user's position in the room: nothing up to
                     // e.last_seq is theirs (a gap filled from storage later goes to the
                     // members of that moment, who may have joined after it was sent).
                     if (auto b = it->second.tracker.join(e.room, e.last_seq, e.read_seq)) {
                       auto ev = std::make_shared<api::OutEvent>(*api::badge_event(*b));
                       ev->position = e.last_seq;
                       api::OutEventPtr frame = std::move(ev);
                       each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
                     }
                     sequencer.anchor(e.room, e.last_seq, released);
                     follow(e.user, it->second);
                   },
                   [&](const chat::MemberLeft& e) {
                     auto it = users.find(e.user);
                     if (it == users.end()) return;
                     // A typer who left: their typing there stops now, everywhere.
                     if (auto s = typers.gone(e.user, e.room)) publish_typing({*s});
                     it->second.tracker.leave(e.room, e.last_seq);
                     for (const auto& [r, c] : it->second.chatrooms)
                       if (r == e.room) c->kick(1008, "not a member");
                     // room_left to the leaver's sidebars (their sockets of the room are closed),
                     // unless they were told of a later change that has them back in the room.
                     auto& told = it->second.told[e.room];
                     if (e.at >= told.at) {
                       told = {e.at, true};
                       auto frame = api::room_left_event(e.room);
                       for (const auto& c : it->second.sidebars) c->deliver(frame);
                     }
                     follow(e.user, it->second);
                   },
                   [&](const chat::RoomUpdated& e) {
                     // room_updated to the sidebars of every member here and to their sockets
                     // of the room; the leaver is not in members.
                     api::OutEventPtr frame;
                     for (const auto& m : e.members) {
                       auto it = users.find(m.id);
                       if (it == users.end()) continue;
                       auto& told = it->second.told[e.room];
                       if (e.at < told.at || (e.at == told.at && told.left)) continue;  // older news
                       told = {e.at, false};
                       if (!frame) frame = api::room_updated_event(e);
                       each_follower(it->second, e.room, [&](const ConnPtr& c) { c->deliver(frame); });
                     }
                   },
                   [&](const chat::Typing& e) {
                     if (!room_users.count(e.room)) return;  // nobody here follows the room
                     bool show = e.start ? board.start(e.room, e.user, std::chrono::milliseconds(e.ttl_ms), Clock::now())
                                         : board.stop(e.room, e.user);
                     if (show) deliver_typing(e.room, e.user, e.start);
                     arm_typing();
                   },
                   [&](const chat::Presence& e) { deliver_presence(e); },
                   [&](const chat::UploadProgress& e) {
                     auto it = users.find(e.user);  // every connection of the uploader here
                     if (it == users.end()) return;
                     auto frame = api::upload_progress_event(e);
                     for (const auto& c : it->second.sidebars) c->deliver(frame);
                     for (const auto& [r, c] : it->second.chatrooms) c->deliver(frame);
                   },
                   [&](const chat::TokensRevoked& e) {
                     // The user's sockets opened with a token older than the new version (a
                     // socket of a fresh login, after it, stays: events may come late).
                     auto it = users.find(e.user);
                     if (it == users.end()) return;
                     auto revoke = [&](const ConnPtr& c) {
                       auto v = c->token_version();
                       if (!v || *v < e.version) c->kick(1008, "token revoked");
                     };
                     for (const auto& c : it->second.sidebars) revoke(c);
                     for (const auto& [r, c] : it->second.chatrooms) revoke(c);
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
      std::optional<api::WsService::Fill> fill;
      try {
        fill = self->svc.fill(gap.room, gap.after, gap.before, self->opts.fill_max);
      } catch (const std::exception& e) {
        spdlog::warn("gap fill of room={} failed: {}; retrying after the hold", gap.room, e.what());
      }
      asio::post(self->order, [self, gap, fill = std::move(fill)] {
        if (fill) return self->filled(gap, *fill);
        std::lock_guard g(self->mu);
        self->sequencer.unfilled(gap.room, Clock::now());
        self->arm_timer();
        // A gap that a resync found at the end of a room (nothing held there reveals it
        // again): tried again in a second, until the room is caught up.
        auto retry = std::make_shared<asio::steady_timer>(self->order, std::chrono::seconds(1));
        retry->async_wait([self, retry, gap](const boost::system::error_code& ec) {
          if (ec) return;
          std::lock_guard g(self->mu);
          if (auto again = self->sequencer.behind(gap.room, gap.before - 1)) self->start_fill(*again);
        });
      });
    });
  }

  void filled(const chat::RoomSequencer<chat::EventPtr>::Gap& gap, const api::WsService::Fill& fill) {
    std::lock_guard g(mu);
    // No badges from a fill: the watermarks at that commit are unknown, and the held message
    // after the gap carries newer ones. No origin either (see docs/decisions.md).
    for (const auto& m : fill.messages) send_message_frames(m, fill.members, [](Id u) { return u; }, {});
    // A fill that hit fill_max covers part of the gap: go on after its last message (the rest
    // is due again after another hold).
    chat::Seq upto = static_cast<int>(fill.messages.size()) < opts.fill_max || fill.messages.empty()
                         ? gap.before
                         : std::min(gap.before, fill.messages.back().seq + 1);
    std::vector<chat::EventPtr> released;
    auto more = sequencer.filled(gap.room, upto, Clock::now(), released);
    deliver_released(released);
    release_parked(gap.room);
    if (more) start_fill(*more);
    arm_timer();
  }

  // The user's badge state from storage, read after their first connection registered.
  void start_load(Id user, std::uint64_t generation) {
    asio::post(pool, [self = shared_from_this(), user, generation] {
      {
        std::lock_guard g(self->mu);
        if (auto it = self->users.find(user); it != self->users.end() && it->second.generation == generation)
          it->second.load_reading = true;
      }
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
    if (!snap) {  // storage failed: without the user's badges no socket of theirs is right
      for (const auto& c : u.sidebars) c->kick(1011, "try again");
      for (const auto& [r, c] : u.chatrooms) c->kick(1011, "try again");
      u.awaiting_snapshot.clear();
      return;
    }
    auto changed = u.tracker.load(*snap);
    follow(user, u);
    auto badges = snapshot_frames(u.tracker);
    for (const auto& c : u.awaiting_snapshot) c->deliver_snapshot(badges);
    u.awaiting_snapshot.clear();
    for (Id room : changed)  // held back while loading: to the sockets already live
      if (auto b = u.tracker.badge(room)) {
        auto ev = api::badge_event(*b);
        for (const auto& [r, c] : u.chatrooms)
          if (r == room) c->deliver(ev);
      }
    // The snapshot's last_seqs anchor rooms this instance did not know yet, so their first
    // messages need not wait out a hold (a chatroom socket that read less reads the rest).
    std::vector<chat::EventPtr> released;
    for (const auto& s : *snap) sequencer.anchor(s.room, s.last_seq, released);
    deliver_released(released);
    arm_timer();
    if (u.resync_after_load) {
      u.resync_after_load = false;
      start_resync(user, u);
    }
  }

  // Reads the user's state again after the bus may have lost events (an outage, or events
  // committed before the user's subscription was in place), and repairs what was missed.
  void start_resync(Id user, UserConns& u) {
    if (!u.tracker.loaded()) {
      u.resync_after_load = true;  // the first load is running: after it
      return;
    }
    if (u.reloading) {
      u.reload_again = true;
      return;
    }
    u.reloading = true;
    std::uint64_t mark = u.tracker.begin_reload();
    asio::post(pool, [self = shared_from_this(), user, generation = u.generation, mark] {
      std::optional<api::WsService::Resync> state;
      try {
        state = self->svc.resync_state(user);
      } catch (const std::exception& e) {
        spdlog::warn("resync of user={} failed: {}", user, e.what());
      }
      std::lock_guard g(self->mu);
      self->resynced(user, generation, mark, state);
    });
  }

  void resynced(Id user, std::uint64_t generation, std::uint64_t mark, const std::optional<api::WsService::Resync>& state) {
    auto it = users.find(user);
    if (it == users.end() || it->second.generation != generation) return;
    UserConns& u = it->second;
    u.reloading = false;
    if (state) {
      // A revocation whose event was missed: as TokensRevoked would have done.
      auto revoke = [&](const ConnPtr& c) {
        if (auto v = c->token_version(); v && *v < state->token_version) c->kick(1008, "token revoked");
      };
      for (const auto& c : u.sidebars) revoke(c);
      for (const auto& [r, c] : u.chatrooms) revoke(c);
      auto re = u.tracker.reload(state->badges, mark);
      for (Id room : re.changed) send_badge(u, u.tracker.badge(room));
      for (Id room : re.left)
        for (const auto& [r, c] : u.chatrooms)
          if (r == room) c->kick(1008, "not a member");
      follow(user, u);
      // Messages whose events were lost: the rooms behind storage are filled from it now
      // (without a later message nothing held would ever reveal the gap).
      std::vector<chat::EventPtr> released;
      std::vector<chat::RoomSequencer<chat::EventPtr>::Gap> gaps;
      for (const auto& s : state->badges) {
        sequencer.anchor(s.room, s.last_seq, released);  // rooms not anchored yet
        if (auto gap = sequencer.behind(s.room, s.last_seq)) gaps.push_back(*gap);
      }
      deliver_released(released);
      for (const auto& gap : gaps) start_fill(gap);
      arm_timer();
    } else {
      // Storage refused: what was missed is still missing. Again in a second (once per second
      // per user while storage fails), as long as this registration lasts.
      auto retry = std::make_shared<asio::steady_timer>(order, std::chrono::seconds(1));
      retry->async_wait([self = shared_from_this(), retry, user, generation](const boost::system::error_code& ec) {
        if (ec) return;
        std::lock_guard g(self->mu);
        if (auto it = self->users.find(user); it != self->users.end() && it->second.generation == generation)
          self->start_resync(user, it->second);
      });
    }
    if (u.reload_again) {
      u.reload_again = false;
      start_resync(user, u);
    }
  }
};

Hub::Hub(asio::io_context& ioc, asio::thread_pool& pool, api::WsService& service, HubOptions opts)
    : impl_(std::make_shared<Impl>(ioc, pool, service, opts)) {
  impl_->opts.max_pending = std::max<std::size_t>(1, opts.max_pending);
}

Hub::~Hub() {
  std::lock_guard g(impl_->mu);
  impl_->timer.cancel();
  impl_->typing_timer.cancel();
}

void Hub::on_event(const chat::EventPtr& ev) {
  if (std::holds_alternative<chat::Typing>(*ev)) return impl_->on_event_typing(ev);
  // Upload progress but the last is ephemeral too (the last one waits like a message).
  if (const auto* p = std::get_if<chat::UploadProgress>(&*ev); p && !p->final()) return impl_->on_event_typing(ev);
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

// Typing is ephemeral: it never makes the publisher wait (the typer's socket strand, a
// timer, the bus thread); while max_pending events are queued it is dropped.
void Hub::Impl::on_event_typing(const chat::EventPtr& ev) {
  {
    std::lock_guard lk(pending_mu);
    if (stopped || pending >= opts.max_pending) return;
    ++pending;
  }
  svc.load().fanout_pending(1);
  asio::post(order, [self = shared_from_this(), ev] {
    try {
      self->process(ev);
    } catch (const std::exception& e) {
      spdlog::error("typing fan-out failed: {}", e.what());
    }
    self->svc.load().fanout_pending(-1);
    {
      std::lock_guard g(self->pending_mu);
      --self->pending;
    }
    self->pending_cv.notify_one();
  });
}

api::TypingDesk::Verdict Hub::typing(const api::WsIdentity& who, Id room, bool start, bool member_checked) {
  auto& im = *impl_;
  std::vector<chat::TypingSignal> out;
  std::lock_guard g(im.mu);
  {
    auto it = im.users.find(who.user);
    if (it == im.users.end()) return Verdict::Sent;  // the socket is closing: nobody to tell
    auto& u = it->second;
    // The user's rooms as the tracker knows them (a read only while it loads); a chatroom
    // socket's own room was checked at admission (and it is closed when its user leaves).
    if (!member_checked) {
      if (u.tracker.loaded()) {
        if (!u.tracker.member(room)) return Verdict::NotMember;
      } else if (who.room != room) {
        return Verdict::Unknown;
      }
    }
    auto now = Clock::now();
    if (start) {
      auto o = im.typers.start(who.user, room, now);
      if (o.refused) return Verdict::Full;
      if (o.send) out.push_back(*o.send);
    } else if (auto s = im.typers.stop(who.user, room, now)) {
      out.push_back(*s);
    }
    im.arm_typing();
  }
  im.publish_typing(out);  // under mu: see publish_typing
  return Verdict::Sent;
}

bool Hub::add(Id user, Id room, const std::shared_ptr<WsConnection>& c) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  if (im.closing) return false;
  auto [uit, fresh] = im.users.try_emplace(user);
  auto& u = uit->second;
  if (fresh) {
    u.generation = ++im.generations;
    if (im.opts.interest) im.opts.interest(user, true);
    if (im.opts.presence) im.opts.presence(user, true);
  }
  if (room == 0) {
    u.sidebars.push_back(c);
    if (u.tracker.loaded()) {
      c->deliver_snapshot(im.snapshot_frames(u.tracker));
    } else {
      u.awaiting_snapshot.push_back(c);
    }
  } else {
    u.chatrooms.emplace_back(room, c);
    im.follow(user, u);
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
  std::vector<chat::TypingSignal> out;
  std::lock_guard g(im.mu);
  im.remove(user, room, c, out);
  im.publish_typing(out);
}

void Hub::Impl::remove(Id user, Id room, const WsConnection* c, std::vector<chat::TypingSignal>& typing_out) {
  auto& im = *this;
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
  // The typer's last socket that could type in a room is gone: that typing stops now.
  if (u.sidebars.empty())
    for (Id r : im.typers.rooms_of(user)) {
      bool covered = std::any_of(u.chatrooms.begin(), u.chatrooms.end(), [r](const auto& p) { return p.first == r; });
      if (!covered)
        if (auto s = im.typers.gone(user, r)) typing_out.push_back(*s);
    }
  if (u.sidebars.empty() && u.chatrooms.empty()) {
    for (Id r : u.followed) im.unfollow(r, user);
    im.users.erase(it);
    if (im.opts.interest) im.opts.interest(user, false);
    if (im.opts.presence) im.opts.presence(user, false);
  } else if (room != 0) {
    im.follow(user, u);
  }
}

chat::Seq Hub::anchor(Id room, chat::Seq seq) { return anchor(std::vector<std::pair<Id, chat::Seq>>{{room, seq}}).front(); }

std::vector<chat::Seq> Hub::anchor(const std::vector<std::pair<Id, chat::Seq>>& rooms) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  std::vector<chat::EventPtr> released;
  for (const auto& [room, seq] : rooms) im.sequencer.anchor(room, seq, released);
  im.deliver_released(released);
  im.arm_timer();
  std::vector<chat::Seq> next;
  next.reserve(rooms.size());
  for (const auto& [room, seq] : rooms) next.push_back(im.sequencer.next(room));
  return next;
}

void Hub::resync(std::optional<Id> user) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  if (user) {
    if (auto it = im.users.find(*user); it != im.users.end()) im.start_resync(*user, it->second);
    return;
  }
  for (auto& [id, u] : im.users) im.start_resync(id, u);
}

void Hub::watching(Id user) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  auto it = im.users.find(user);
  if (it == im.users.end()) return;
  // A first load whose read has not begun yet sees everything committed before the
  // subscription: nothing to read again (the usual case: one read per first connection).
  if (!it->second.tracker.loaded() && !it->second.load_reading) return;
  im.start_resync(user, it->second);
}

void Hub::resync_room(Id room) {
  auto& im = *impl_;
  std::lock_guard g(im.mu);
  auto it = im.room_users.find(room);
  if (it == im.room_users.end()) return;
  for (Id user : it->second)
    if (auto u = im.users.find(user); u != im.users.end()) im.start_resync(user, u->second);
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
