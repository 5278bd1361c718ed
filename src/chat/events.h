#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// The domain's events: typed values published once a change has committed, carried by the
// bus (bus/) to every instance and rendered to JSON there (api/events_json), never before.
// Each carries what ordering at the receiver needs: a message its room and seq; a badge the
// (last_seq, read_seq) pair of its (user, room), which only grows and so orders the states.

// A member and their read watermark at the commit that produced the event.
struct MemberSeq {
  Id user = 0;
  Seq read_seq = 0;
};

// A new message. members: the room's active members at commit, the sender included, ordered
// by user id. origin: the connection that sent it over WebSocket ("" for REST), which gets
// the ack instead of the echo.
struct MessageCreated {
  Message message;
  std::vector<MemberSeq> members;
  std::string origin;
};

// A read call moved reader's watermark to newest_read.seq (blue ticks, the reader's badge).
struct MessageRead {
  Id room = 0;
  Id reader = 0;
  Message newest_read;  // the message at the reader's new watermark
  TimeMs read_at = 0;
  std::vector<std::pair<Id, TimeMs>> read_status;  // members but its sender who read it
  std::vector<Id> members;
  Seq last_seq = 0;  // the room's, at commit
};

// user's delivered watermark moved to up_to_seq (grey double ticks): by a `delivered` frame,
// or by a read call that moved the read watermark past it (a read implies delivered).
// members: the room's active members at commit, who all hear it. last_seq: the room's at
// commit (receivers hold it until the messages up to it are out, as for MessageRead).
struct MessageDelivered {
  Id room = 0;
  Id user = 0;
  Seq up_to_seq = 0;
  TimeMs delivered_at = 0;
  std::vector<Id> members;
  Seq last_seq = 0;
};

// user became an active member (room creation, add, re-join) at the room's last_seq.
struct MemberJoined {
  Id room = 0;
  Id user = 0;
  Seq last_seq = 0;
  Seq read_seq = 0;
};

// user stopped being a member (left or removed) when the room was at last_seq, at `at` (the
// store's clock after the room lock: never behind an earlier change of the room's members).
struct MemberLeft {
  Id room = 0;
  Id user = 0;
  Seq last_seq = 0;
  TimeMs at = 0;
};

// A room's membership changed: the room as its members see it now, once per change (after the
// change's MemberJoined/MemberLeft). created: the room is new and joined holds its first
// members; else joined holds the member just added (re-joined), or is empty after a leave or
// removal (the leaver is no longer in members). Receivers send `room_updated` to the
// connections of every user in members, and nobody else (the leaver gets `room_left` from
// MemberLeft). at: the change's time on the store's clock after the room lock, so it never
// goes back along the room's membership changes; receivers drop one older than what a user
// already got for the room (events of two changes may arrive in either order).
struct RoomUpdated {
  Id room = 0;
  std::optional<std::string> name;  // nullopt for direct rooms
  RoomType type = RoomType::Group;
  std::vector<User> members;  // the active members at commit, ordered by user id
  std::vector<Id> joined;
  bool created = false;
  TimeMs at = 0;
};

// Every token of user issued before now is revoked (logout, password change): the user's
// token version became `version` (tokens carry the version they were issued at). Receivers
// close the user's sockets (1008 `token revoked`) and raise their cached version. Unlike the
// others it matters to every instance, not only to those with the user's sockets: each one
// caches token versions (api/known_users.h), so a bus delivers it to all of them.
struct TokensRevoked {
  Id user = 0;
  std::int64_t version = 0;
};

// Ephemeral, never stored: user started typing in room (start; a refresh is another start)
// or stopped. A start ends by itself ttl_ms after it unless refreshed: every receiver ends it
// on its own (chat/typing.h), so it ends even when the typer's instance is gone. Carried on
// the room's channel, like the room's messages; rendered as `typing` to the other members.
struct Typing {
  Id room = 0;
  Id user = 0;
  bool start = false;
  std::int64_t ttl_ms = 0;  // starts only
};

// user's reaction emoji on a message was added (add) or removed: published only when the
// call changed something. seq: the message's (receivers hold the event until the message is
// out, as for MessageRead). at: the change's stamp, which grows along the changes of the message
// (Tx::put_reaction), so that a receiver drops a change older than one
// it already sent: an add and a remove made through two instances may arrive swapped.
// members: the room's active members at commit, who all hear it. Carried on the room's channel.
struct ReactionChanged {
  Id message = 0;
  Id room = 0;
  Seq seq = 0;
  Id user = 0;
  std::string emoji;
  bool add = false;
  TimeMs at = 0;
  std::vector<Id> members;
};

// user's presence changed (chat/presence.h): online (a first connection anywhere) or offline
// (the grace after the last one passed). audience: who shared a room with user when it was
// decided (user excluded; at most kMaxPresenceAudience), the only ones told. at: when it was
// decided (receivers drop one older than what they sent). On the broadcast channel.
struct Presence {
  static constexpr std::size_t kMaxPresenceAudience = 10000;
  Id user = 0;
  bool online = false;
  std::optional<TimeMs> last_seen;
  TimeMs at = 0;
  std::vector<Id> audience;
};

// Ephemeral, never stored: `received` of `total` bytes of upload's PUT by user have arrived
// (at most one per 100 ms per upload; the last, received == total, after the upload is
// stored). Carried on the user's channel; rendered as `upload_progress` to all of the user's
// connections (the last one is never dropped).
struct UploadProgress {
  Id upload = 0;
  Id user = 0;
  std::int64_t received = 0;
  std::int64_t total = 0;
  bool final() const { return received == total; }
};

using Event = std::variant<MessageCreated, MessageRead, MessageDelivered, MemberJoined, MemberLeft, RoomUpdated,
                           TokensRevoked, Typing, ReactionChanged, Presence, UploadProgress>;
using EventPtr = std::shared_ptr<const Event>;

// Where the domain hands its committed events (bus/ implements it). publish() is called
// after the commit, from whichever thread ran it: it must only hand off, and it may be
// called concurrently. No ordering is promised between calls: receivers order per room.
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  virtual void publish(EventPtr event) = 0;
};

}  // namespace parley::chat
