#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chat/read_state.h"
#include "chat/types.h"

namespace parley::chat {

// One room's badge state for one user: both numbers only grow, so the pair, compared
// lexicographically, orders the states of a (user, room) in time, whichever order the
// events carrying them arrive in.
struct RoomBadge {
  Id room = 0;
  Seq last_seq = 0;
  Seq read_seq = 0;
};

// A badge as a client sees it: the room's unread count and the user's total over every room.
struct Badge {
  Id room = 0;
  Seq unread = 0;
  Seq total = 0;
  Seq last_seq = 0;
  Seq read_seq = 0;
};

// The unread state of one connected user, kept by each instance from the events themselves
// so that no write has to compute anyone's total. It starts empty ("loading"), takes every
// event from the moment the user's first connection registered, and is completed by a
// snapshot read from storage after that moment: since states merge by their order (the
// newer pair wins), the snapshot and the events may come in any order and the result is the
// same. Badges are only produced once loaded (before, the total is not known).
//
// Membership: a leave at last_seq L leaves a tombstone that refuses older states (seq <= L)
// of that room, so a late event of the old membership cannot bring the room back; a join at
// J >= L lifts it. Bounded by the rooms the user has been a member of.
class UnreadTracker {
 public:
  // A state from a message or read event. Returns the badge when the room's count changed,
  // or when the event is someone else's message and the room's last_seq has moved past the
  // last badge given (states in between came out of order and were superseded: the client
  // still learns that newer messages exist). from_other: a message sent by someone else.
  std::optional<Badge> apply(Id room, Seq last_seq, Seq read_seq, bool from_other = false);
  // The user joined the room (creation, add, re-join): the room counts from now on.
  std::optional<Badge> join(Id room, Seq last_seq, Seq read_seq);
  // The user left the room when it was at last_seq: it no longer counts.
  void leave(Id room, Seq last_seq);
  // Completes the tracker with a snapshot of every room the user is a member of, read after
  // the tracker was created. Returns the rooms whose state the live events had changed
  // before it (their badges were held back for want of a total).
  std::vector<Id> load(const std::vector<RoomBadge>& snapshot);

  // After a bus outage: merges a fresh snapshot into a loaded tracker. Events may have been
  // missed, so the snapshot is the truth for every room it does not see older than the
  // tracker: newer states are taken (their rooms returned in changed, their badges to send),
  // and a room the tracker holds as a member but the snapshot lacks was left meanwhile
  // (returned in left) unless an event touched it after begin_reload() (a join that the
  // snapshot read may predate). Call begin_reload() before the snapshot is read.
  struct Reloaded {
    std::vector<Id> changed;
    std::vector<Id> left;
  };
  std::uint64_t begin_reload() { return ++clock_; }
  Reloaded reload(const std::vector<RoomBadge>& snapshot, std::uint64_t mark);

  bool loaded() const { return loaded_; }
  Seq total() const { return total_; }
  std::optional<Badge> badge(Id room) const;
  std::vector<Badge> badges() const;  // every room the user is a member of
  std::vector<Id> rooms() const;      // the same rooms, unordered
  bool member(Id room) const {        // one of them
    auto it = rooms_.find(room);
    return it != rooms_.end() && it->second.member;
  }

 private:
  struct Entry {
    Seq last_seq = 0;
    Seq read_seq = 0;
    bool member = false;
    Seq left_at = -1;       // tombstone: states with last_seq <= left_at are stale
    Seq badged_last = 0;    // last_seq of the newest badge given for this room
    std::uint64_t touched = 0;  // clock_ when an event last changed it
  };
  static bool newer(Seq ls, Seq rs, const Entry& e) { return ls > e.last_seq || (ls == e.last_seq && rs > e.read_seq); }
  std::optional<Badge> set(Id room, Entry& e, Seq last_seq, Seq read_seq, bool from_other);
  Badge give(Id room, Entry& e) {
    e.badged_last = e.last_seq;
    return badge_of(room, e);
  }
  Badge badge_of(Id room, const Entry& e) const {
    return Badge{room, unread_count(e.last_seq, e.read_seq), total_, e.last_seq, e.read_seq};
  }

  std::unordered_map<Id, Entry> rooms_;
  std::unordered_set<Id> changed_while_loading_;
  Seq total_ = 0;
  bool loaded_ = false;
  std::uint64_t clock_ = 0;  // counts reloads: an entry touched since begin_reload() has touched > mark
};

}  // namespace parley::chat
