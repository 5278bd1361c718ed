#pragma once
#include <unordered_map>
#include <utility>

#include "chat/types.h"

namespace parley::chat {

// What one connection has been sent, per room, so that it never gets a message seq twice or
// backwards (the replay seam of resume, a snapshot meeting live events, a gap filled from
// storage) and a badge never goes back. Plain logic; the connection asks before queueing.
// Bounded by the rooms the connection follows (one room for a chatroom socket).
class DeliveryFilter {
 public:
  // Messages: true (and remembered) when seq is newer than anything sent for the room.
  bool admit_message(Id room, Seq seq) {
    Seq& last = rooms_[room].message_seq;
    if (seq <= last) return false;
    last = seq;
    return true;
  }
  // The connection has every message of room up to seq (a replay or a fresh start).
  void messages_sent_up_to(Id room, Seq seq) {
    Seq& last = rooms_[room].message_seq;
    if (seq > last) last = seq;
  }
  Seq last_message(Id room) const {
    auto it = rooms_.find(room);
    return it == rooms_.end() ? 0 : it->second.message_seq;
  }
  // Badges: true (and remembered) when (last_seq, read_seq) is newer than the one sent.
  bool admit_badge(Id room, Seq last_seq, Seq read_seq) {
    auto& sent = rooms_[room];
    if (sent.has_badge &&
        !(last_seq > sent.badge.first || (last_seq == sent.badge.first && read_seq > sent.badge.second)))
      return false;
    sent.has_badge = true;
    sent.badge = {last_seq, read_seq};
    return true;
  }

 private:
  struct Sent {
    Seq message_seq = 0;
    bool has_badge = false;
    std::pair<Seq, Seq> badge{0, 0};
  };
  std::unordered_map<Id, Sent> rooms_;
};

}  // namespace parley::chat
