#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/types.h"

namespace parley::api {

// One serialized server→client event, shared by every connection it goes to.
struct OutEvent {
  enum class Kind { NewMessage, MessageRead, UnreadCount, Other };
  Kind kind = Kind::Other;
  Id room = 0;
  chat::Seq seq = 0;       // NewMessage: the message's seq (per-connection order and dedup)
  chat::Seq last_seq = 0;  // UnreadCount: (last_seq, read_seq) orders a badge's states
  chat::Seq read_seq = 0;
  std::string payload;  // the JSON text frame
};
using OutEventPtr = std::shared_ptr<const OutEvent>;

// Where events go: the registry of live connections (net/hub). api/ renders, the fan-out
// delivers. run_in_order() runs tasks one at a time in the order given, off the caller's
// thread; deliveries made from those tasks keep that order on every connection.
class Fanout {
 public:
  virtual ~Fanout() = default;
  virtual bool online(Id user) = 0;
  virtual void run_in_order(std::function<void()> task) = 0;
  // To every connection of each user that follows the event's room (sidebar: all rooms).
  virtual void deliver(const std::vector<Id>& users, const OutEventPtr& ev) = 0;
  // Membership ended: close the user's chatroom sockets of that room (1008 "not a member").
  virtual void revoke(Id user, Id room) = 0;
};

}  // namespace parley::api
