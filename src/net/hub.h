#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/fanout.h"

namespace boost::asio {
class io_context;
}

namespace parley::net {

// A live WebSocket connection as the hub sees it.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Thread-safe: hands the event to the connection's own strand.
  virtual void deliver(const api::OutEventPtr& ev) = 0;
  // Closes with the code after flushing what is queued (1001) or at once (1008).
  virtual void kick(std::uint16_t code, std::string reason) = 0;
  // Whether events of the room go to this connection (sidebar: every room of the user).
  virtual bool follows(Id room) const = 0;
  virtual bool is_chatroom_of(Id room) const = 0;
};

// The connection registry: user → connections. Fan-out takes a snapshot of the targets under
// the lock and delivers outside it; the event's bytes are shared, never copied per target.
// Bounded by the open connections (each registers once and is removed on every exit path).
class Hub final : public api::Fanout {
 public:
  // max_pending: fan-out tasks waiting to run; beyond it run_in_order() blocks its caller
  // (the store's commit thread), so a fan-out that cannot keep up slows commits instead of
  // growing without bound.
  explicit Hub(boost::asio::io_context& ioc, std::size_t max_pending = 10000);
  ~Hub() override;

  // Registers c; false (and not registered) once close_all() has run.
  bool add(Id user, const std::shared_ptr<WsConnection>& c);
  void remove(Id user, const WsConnection* c);
  void close_all(std::uint16_t code, const std::string& reason);
  // The io_context has stopped: run_in_order() drops its tasks from now on instead of
  // waiting for room (nobody is connected any more; clients resume after a restart).
  void shutdown();
  std::size_t size() const;

  bool online(Id user) override;
  void run_in_order(std::function<void()> task) override;
  void deliver(const std::vector<Id>& users, const api::OutEventPtr& ev) override;
  void revoke(Id user, Id room) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t max_pending_;
  std::mutex pending_mu_;
  std::condition_variable pending_cv_;
  std::size_t pending_ = 0;
  bool stopped_ = false;
  mutable std::mutex mu_;
  std::unordered_map<Id, std::vector<std::shared_ptr<WsConnection>>> by_user_;
  std::size_t count_ = 0;
  bool closing_ = false;
};

}  // namespace parley::net
