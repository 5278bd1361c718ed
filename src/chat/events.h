#pragma once
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// What a user's badge for one room shows, at one commit. Both last_seq and read_seq only
// grow, so (last_seq, read_seq) orders the states of one (user, room) in time.
struct UnreadState {
  Id user = 0;
  Id room = 0;
  Seq unread_count = 0;
  Seq total_unread = 0;  // over every room of the user
  Seq last_seq = 0;
  Seq read_seq = 0;
};

struct MessageCreated {
  Message message;
  std::vector<Id> members;          // the room's members at commit, sender included
  std::vector<UnreadState> unread;  // of the online members whose count changed
};

struct ReadMoved {
  Id room = 0;
  Id reader = 0;
  Message newest_read;  // the message at the reader's new watermark
  TimeMs read_at = 0;
  std::vector<std::pair<Id, TimeMs>> read_status;  // members but its sender who read it
  std::vector<Id> members;
  UnreadState reader_unread;
};

struct MemberJoined {
  Id room = 0;
  Id user = 0;
  UnreadState unread;
};

struct MemberLeft {
  Id room = 0;
  Id user = 0;
};

// Receives the domain's events. is_online() is asked inside transactions (to compute badge
// states only for users who can receive them); the other calls come after the commit that
// caused them, in commit order, on the store's commit thread: they must only hand off.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual bool is_online(Id user) = 0;
  virtual void message_created(const MessageCreated& e) = 0;
  virtual void read_moved(const ReadMoved& e) = 0;
  virtual void member_joined(const MemberJoined& e) = 0;
  virtual void member_left(const MemberLeft& e) = 0;
};

}  // namespace parley::chat
