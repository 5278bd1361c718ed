#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/fanout.h"
#include "api/ws_service.h"
#include "chat/events.h"
#include "chat/typing.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace parley::net {

// A live WebSocket connection as the hub sees it. Every call is thread-safe and only hands
// off to the connection's own strand.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  virtual void deliver(const api::OutEventPtr& ev) = 0;
  // Sidebar sockets: the badge of every room of the user, the first events after connected.
  virtual void deliver_snapshot(std::vector<api::OutEventPtr> badges) = 0;
  // Closes with the code after flushing what is queued (1001) or at once (1008, 1011).
  virtual void kick(std::uint16_t code, std::string reason) = 0;
  virtual const std::string& connection_id() const = 0;
  // The token version the connection was admitted with (nullopt: no token, the insecure
  // sidebar). A revocation to version v closes the connections below v (and those without).
  virtual std::optional<std::int64_t> token_version() const { return std::nullopt; }
};

struct HubOptions {
  // Events received from the bus and waiting to be fanned out; beyond it the publishing
  // thread waits, so a fan-out that cannot keep up slows commits instead of growing without
  // bound. (api::LoadGauge's fan-out watermark, far lower, refuses new sends long before.)
  std::size_t max_pending = 10000;
  // Per-room order (chat/room_order.h): how long a message that came before an earlier seq
  // is held before the gap is filled from storage; rooms and held messages remembered.
  std::chrono::milliseconds gap_hold{200};
  std::size_t max_rooms = 100000;
  std::size_t max_held_per_room = 10000;
  int fill_max = 1000;  // messages one gap fill reads at most
  // Told when the first connection of a user opens here (true) and the last one closes
  // (false): what the bus must bring to this instance (bus::Bus::watch_user).
  std::function<void(Id user, bool watch)> interest;
  // The same for rooms: told when the first user connected here follows a room (a member
  // with a tracker loaded here, or a chatroom socket of it) and after the last one stops
  // (bus::Bus::watch_room). Called under the hub's lock: it must only hand off.
  std::function<void(Id room, bool watch)> room_interest;
  // Typing (docs/decisions.md "Typing"): where the typing events of this instance's sockets
  // are published (the bus, which hands them back to on_event here and to the other
  // instances); without it they go to on_event directly. The limits bound both the typers'
  // table and the board of who is shown typing.
  std::function<void(chat::EventPtr)> publish;
  chat::TypingLimits typing;
  // Presence (net/presence_keeper.h): told, in order, when the first connection of a user
  // opens here (true) and the last one closes (false). Called under the hub's lock: it must
  // only hand off.
  std::function<void(Id user, bool here)> presence;
};

// The instance's receiver and connection registry. It takes committed events from the bus
// (on_event), puts each room's messages in seq order (chat::RoomSequencer), keeps the badge
// state of every connected user from the events (chat::UnreadTracker: loaded from storage on
// the user's first connection, then updated from events, so no write computes a total),
// renders each event once (api/events_json) and hands the shared frame to exactly the
// connections that receive it: per user, their sidebar sockets and their chatroom sockets of
// that room (an index, not a walk asking each connection).
//
// Events are processed one at a time on the hub's own strand; the registry, trackers and
// sequencer sit behind one mutex so that a registration is seen by every event processed
// after it. Bounded by the open connections, the users they belong to, and the limits above.
//
// Typing (api::TypingDesk): the frames of this instance's sockets are checked against the
// user's rooms as the tracker knows them and coalesced (chat::TypingCoalescer), then
// published; the Typing events received, local or remote, are shown to the room's other
// members here until a stop or their expiry (chat::TypingBoard). One timer serves both.
//
// Presence: every connection here of a user in a Presence event's audience gets `presence`
// (the user's own connections are not in it); one older than, or of the same status as, the
// last one sent for that user is not sent.
class Hub final : public api::TypingDesk {
 public:
  Hub(boost::asio::io_context& ioc, boost::asio::thread_pool& pool, api::WsService& service, HubOptions opts = {});
  ~Hub() override;

  // The bus receiver: hands the event to the hub's strand (waits while max_pending are queued).
  void on_event(const chat::EventPtr& ev);

  // Registers a connection of user: room 0 for a sidebar socket (which then gets its badge
  // snapshot through deliver_snapshot), else a chatroom socket of that room. False (and not
  // registered) once close_all() has run.
  bool add(Id user, Id room, const std::shared_ptr<WsConnection>& c);
  void remove(Id user, Id room, const WsConnection* c);
  // A chatroom socket that registered, then read the room from storage, has every message up
  // to seq: anchors the room's order if this instance did not know it yet. Returns the next
  // seq the room releases: when it is above seq + 1, the messages in between went out before
  // this socket's read (or were dropped as late), so the socket reads them itself.
  chat::Seq anchor(Id room, chat::Seq seq);
  // The same for a sidebar's snapshot (room, last_seq) pairs, under one lock: the next seq
  // each room releases, in the order given.
  std::vector<chat::Seq> anchor(const std::vector<std::pair<Id, chat::Seq>>& rooms);

  // The bus may have lost events (it reconnected after an outage: every user, nullopt; or
  // user's subscription has just come into place). Reads each such user's state from storage
  // again (on the pool) and repairs the instance: badges that changed are sent, rooms left
  // meanwhile stop counting (their chatroom sockets are closed 1008 not a member), sockets of
  // revoked tokens are closed 1008 token revoked, and rooms behind storage are filled from it
  // (new_message to the sockets that follow them, in seq order, without duplicates).
  void resync(std::optional<Id> user = std::nullopt);
  // The user's subscription has just come into place: as resync(user), unless the user's
  // first load has not begun its read yet (it will see everything committed before).
  void watching(Id user);
  // A room's subscription has just come into place: every user here who follows it is read
  // again, as resync(user) does (events of the moment between the interest and the
  // subscription).
  void resync_room(Id room);

  // A `typing` frame of who's socket, validated (api/ws_dispatch.cpp).
  Verdict typing(const api::WsIdentity& who, Id room, bool start, bool member_checked) override;

  void close_all(std::uint16_t code, const std::string& reason);
  // The io_context has stopped: on_event() drops events from now on instead of waiting for
  // room (nobody is connected any more; clients resume after a restart).
  void shutdown();
  std::size_t size() const;
  bool online(Id user) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::net
