// bus/: carries committed domain events (chat/events.h) between the instances of a
// deployment. Depends on chat/ only. LocalBus is the in-process one (a single instance);
// a Redis implementation (several instances) fits behind the same interface.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "chat/events.h"

namespace parley::bus {

// What an instance receives: every event relevant to what it subscribed to, at least once,
// in no promised order between publishers (receivers order per room by seq and drop what
// they already have). Interest is counted: an instance says which users and rooms its
// connections need (a Redis bus maps them to channels; the local bus delivers everything):
// a watched room brings its messages and reads, a watched user their joins and leaves.
// TokensRevoked goes to every instance whatever it watches: each one caches token versions
// (api/known_users.h), not only those with the user's sockets (a Redis bus: one channel that
// every instance subscribes to).
class Bus : public chat::EventPublisher {
 public:
  using Handler = std::function<void(const chat::EventPtr&)>;
  // The instance's receiver. Called on the publishing thread (local) or the bus's own thread;
  // it must only hand off. Set once, before the first publish.
  virtual void subscribe(Handler handler) = 0;
  virtual void watch_user(Id user) = 0;
  virtual void unwatch_user(Id user) = 0;
  virtual void watch_room(Id room) = 0;
  virtual void unwatch_room(Id room) = 0;
  // True while the bus carries events (for /readyz).
  virtual bool healthy() const = 0;
  // Counters for /metrics, by name (published, dropped, …); none for the local bus.
  virtual std::vector<std::pair<std::string, std::uint64_t>> counters() const { return {}; }
  // Why it is not healthy ("" while it is), for /readyz.
  virtual std::string problem() const { return healthy() ? "" : "the bus is unavailable"; }

  // What the bus tells the instance about its link (a bus that can lose events; the local
  // one never calls it). Lost: from now on events may be missed (caches fed by events, like
  // the token-version cache, must not be trusted). Restored: the link is back and every
  // watched user and room is subscribed again: whatever was missed must be recovered from
  // storage. Watching (id: a user) / WatchingRoom (id: a room): its events reach this instance
  // from now on (the subscription that watch_user / watch_room asked for is in place): what
  // was committed before that is in storage. Called on the bus's own thread; it must only
  // hand off. Set once, before start().
  enum class Link { Lost, Restored, Watching, WatchingRoom };
  using LinkHandler = std::function<void(Link, Id id)>;
  virtual void on_link(LinkHandler) {}
  // Starts the bus's threads (after subscribe() and on_link()); stop() ends them (publishes
  // that come later are delivered locally only). Both idempotent.
  virtual void start() {}
  virtual void stop() {}
};

// In-process: publish() hands the event straight to the subscribed receiver.
class LocalBus final : public Bus {
 public:
  void publish(chat::EventPtr event) override {
    if (handler_) handler_(event);
  }
  void subscribe(Handler handler) override { handler_ = std::move(handler); }
  void watch_user(Id) override {}
  void unwatch_user(Id) override {}
  void watch_room(Id) override {}
  void unwatch_room(Id) override {}
  bool healthy() const override { return true; }

 private:
  Handler handler_;
};

}  // namespace parley::bus
