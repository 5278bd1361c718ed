#pragma once
#include <chrono>
#include <functional>
#include <memory>

#include "chat/events.h"
#include "chat/presence.h"
#include "chat/service.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace parley::net {

struct PresenceOptions {
  std::chrono::milliseconds grace{5000};  // --presence-grace-ms
  // How often the ledger's sweep runs (the shared ledger: lease refresh, instances gone,
  // graces nobody settled); 0: never (the local ledger has nothing to sweep).
  std::chrono::milliseconds sweep_every{0};
};

// Announces presence (docs/decisions.md "Presence"). The hub tells it when a user's first
// connection here opens and the last one closes (HubOptions::presence); it asks the ledger
// (chat::PresenceLedger: blocking when it is Redis) whether a transition is due, runs the
// graces (chat::PresenceGraces, one timer), records last_seen in storage when the last
// connection anywhere closed, and publishes chat::Presence with the users who share a room
// with the user (read from storage at that moment) as its audience. Everything runs on one
// strand of the storage pool, in the order the hub told it: never on an IO thread.
// Bounded by the users with connections here plus those in their grace.
class PresenceKeeper {
 public:
  PresenceKeeper(boost::asio::thread_pool& pool, chat::PresenceLedger& ledger, chat::ChatService& chat,
                 std::function<void(chat::EventPtr)> publish, PresenceOptions opts);
  ~PresenceKeeper();
  // Never blocks: hands off to the strand.
  void connection(Id user, bool here);
  // Starts the sweeps (when sweep_every > 0); stop() cancels every timer (graces running are
  // left to the ledger: another instance's sweep settles them) and takes no more connection
  // news, so the pool can be joined. Call stop() before the pool's join.
  void start();
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::net
