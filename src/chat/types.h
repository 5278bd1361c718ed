// chat/: the domain — users, rooms, members, messages, seq, read watermarks, unread math and
// the authorization rules. Plain C++: no Beast, no SQL, no JSON I/O. Storage implements the
// Store interface declared here (store.h); api/ calls ChatService (service.h).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/time.h"

namespace parley::chat {

using Seq = std::int64_t;

struct User {
  Id id = 0;
  std::string username;
  TimeMs created_at = 0;
};

struct UserAuth {
  User user;
  std::string password_hash;
  // Bumped by every revocation (logout, password change); a token is valid only while the
  // version it carries is the current one.
  std::int64_t token_version = 0;
};

enum class RoomType { Group, Direct };

struct RoomRow {
  Id id = 0;
  std::optional<std::string> name;  // nullopt for direct rooms
  RoomType type = RoomType::Group;
  Id created_by = 0;
  TimeMs created_at = 0;
  Seq last_seq = 0;
  TimeMs last_activity = 0;  // newest message's time, or creation time
};

// A message's reactions: emoji → the users who reacted with it, in the order they did.
using Reactions = std::map<std::string, std::vector<Id>>;
// An uploaded file's record (the bytes live in a file named file_key, never by filename).
// complete: its PUT finished with the declared size; sha256 (hex) is set then. url: the
// signed download link, made when a message carrying it is read (never stored).
struct Upload {
  Id id = 0;
  Id uploader = 0;
  std::string filename;      // metadata only
  std::string content_type;  // validated type/subtype
  std::int64_t size = 0;
  std::string sha256;
  bool complete = false;
  TimeMs created_at = 0;
  std::string file_key;  // server-made random name of the file
  std::string url;
};

struct Message {
  Id id = 0;
  Id room_id = 0;
  Id sender_id = 0;
  std::string content;
  Seq seq = 0;
  TimeMs created_at = 0;
  std::optional<std::string> client_msg_id;
  Reactions reactions;  // filled by the service; empty for a new message; not carried by the bus
  std::vector<Upload> attachments;  // in the order given at send
};

// One (room, user) membership. A removed member keeps the row (active = false) so that a
// re-join can restore the higher of the old watermark and the room's last_seq.
struct MemberRow {
  Id room_id = 0;
  Id user_id = 0;
  Seq read_seq = 0;       // read watermark
  Seq delivered_seq = 0;  // delivered watermark (>= read_seq once set)
  bool active = true;
  TimeMs joined_at = 0;
};

struct MemberUser {
  User user;
  Seq read_seq = 0;
  Seq delivered_seq = 0;
};

// A room as one user sees it.
struct RoomView {
  RoomRow room;
  std::vector<User> members;
  Seq unread_count = 0;
  std::optional<Message> last_message;
  // Every member's read and delivered watermarks, in members' order (GET /api/chatrooms/:id
  // shows them, so that a client derives every message's ticks at once: chat::tick_of).
  struct Marks {
    Id user = 0;
    Seq read_seq = 0;
    Seq delivered_seq = 0;
  };
  std::vector<Marks> watermarks;
};

struct UserRoom {
  RoomRow room;
  Seq read_seq = 0;
};

}  // namespace parley::chat
