// bus/: carries committed domain events (chat/events.h) between the instances of a
// deployment. Depends on chat/ only. LocalBus is the in-process one (a single instance);
// a Redis implementation (several instances) fits behind the same interface.
#pragma once
#include <functional>

#include "chat/events.h"

namespace parley::bus {

// What an instance receives: every event relevant to what it subscribed to, at least once,
// in no promised order between publishers (receivers order per room by seq and drop what
// they already have). Interest is counted: an instance says which users and rooms its
// connections need (a Redis bus maps them to channels; the local bus delivers everything).
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
  // True while the bus carries events (for /readyz).
  virtual bool healthy() const = 0;
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
  bool healthy() const override { return true; }

 private:
  Handler handler_;
};

}  // namespace parley::bus
