#pragma once
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
  explicit Hub(boost::asio::io_context& ioc);
  ~Hub() override;

  void add(Id user, const std::shared_ptr<WsConnection>& c);
  void remove(Id user, const WsConnection* c);
  void close_all(std::uint16_t code, const std::string& reason);
  std::size_t size() const;

  bool online(Id user) override;
  void run_in_order(std::function<void()> task) override;
  void deliver(const std::vector<Id>& users, const api::OutEventPtr& ev) override;
  void revoke(Id user, Id room) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
  std::unordered_map<Id, std::vector<std::shared_ptr<WsConnection>>> by_user_;
  std::size_t count_ = 0;
};

}  // namespace parley::net
