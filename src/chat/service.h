#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/events.h"
#include "chat/store.h"
#include "chat/types.h"
#include "chat/unread_tracker.h"

namespace parley::chat {

// The outcome of a read call in one room.
struct ReadResult {
  Id room_id = 0;
  Seq up_to_seq = 0;     // the reader's watermark after the call
  Seq unread_count = 0;  // the reader's unread count after the call
  Seq last_seq = 0;
  bool moved = false;  // whether the watermark moved (events are sent only then)
  bool delivered_moved = false;  // whether it raised the delivered watermark (a read implies delivered)
  Seq marked = 0;      // how many messages became read
  TimeMs at = 0;
};

// The outcome of a `delivered` frame.
struct DeliveredResult {
  Id room_id = 0;
  Seq up_to_seq = 0;   // the user's delivered watermark after the call
  bool moved = false;  // whether it moved (MessageDelivered is published only then)
  TimeMs at = 0;
};

struct SendResult {
  Message message;
  bool created = false;  // false: an idempotent retry returned the original
};

struct HistoryPage {
  std::vector<Message> messages;  // ascending seq
  bool has_more = false;
};

struct UnreadCounts {
  std::vector<std::pair<Id, Seq>> rooms;  // newest activity first
  Seq total = 0;
};

struct FirstUnread {
  std::optional<Message> message;
  Seq unread_count = 0;
};

struct Reader {
  User user;
  TimeMs read_at = 0;
};

struct Recipient {
  User user;
  TimeMs delivered_at = 0;
};

struct ReadByWho {
  Message message;
  std::vector<Reader> read_by;
  std::vector<Recipient> delivered_to;  // read_by's members included: a read implies delivered
  std::vector<User> unread_by;
  std::size_t member_count = 0;
};

struct MembershipChange {
  RoomView room;         // the room as the caller sees it after the change
  bool changed = false;  // false: nothing to do (already a member)
};

// The domain service: every rule of the contract's REST section that is not HTTP or JSON.
// Each method takes the authenticated caller, checks membership and input, and runs its
// reads and writes in one Store transaction. Throws parley::Error for expected failures.
class ChatService {
 public:
  // publisher (optional) receives the events of every committed change, after its commit.
  explicit ChatService(Store& store, EventPublisher* publisher = nullptr) : store_(store), publisher_(publisher) {}

  // Users
  User create_user(std::string_view username, const std::string& password_hash);  // 409 when taken
  std::optional<UserAuth> user_auth(std::string_view username);
  User get_user(Id id);
  std::vector<User> search_users(std::string_view prefix, int limit);

  // Tokens. The user's current token version (nullopt: no such user).
  std::optional<std::int64_t> token_version(Id user);
  // The caller's name, hash and token version (401 when the user does not exist).
  UserAuth caller_auth(Id caller);
  // Revokes every token of the caller issued until now (logout): bumps the token version and,
  // once committed, publishes TokensRevoked. Returns the new version.
  std::int64_t revoke_tokens(Id caller);
  // Replaces the caller's password hash, which must still be expected_old_hash (the one the
  // caller's old password was checked against; 403 if it changed meanwhile), and revokes
  // every earlier token as revoke_tokens does, in the same transaction. Returns the new version.
  std::int64_t change_password(Id caller, const std::string& expected_old_hash, const std::string& new_hash);

  // Rooms
  RoomView create_group(Id caller, std::string_view name, const std::vector<Id>& member_ids);
  std::pair<RoomView, bool> create_direct(Id caller, Id other);  // bool: created now
  std::vector<RoomView> list_rooms(Id caller);
  RoomView get_room(Id caller, Id room);
  MembershipChange add_member(Id caller, Id room, Id user);
  void remove_member(Id caller, Id room, Id user);

  // Messages
  // origin: the WebSocket connection that sent it ("" for REST); see MessageCreated.
  // attachments: ids of finished uploads of the caller's (chat/uploads.h link_attachments).
  SendResult send(Id caller, Id room, std::string_view content, const std::optional<std::string>& client_msg_id,
                  std::string_view origin = {}, const std::vector<Id>& attachments = {});
  HistoryPage history(Id caller, Id room, std::optional<Seq> after, std::optional<Seq> before, int limit);
  Message get_message(Id caller, Id message);

  // Read state
  ReadResult read_one(Id caller, Id message);
  std::vector<ReadResult> read_bulk(Id caller, const std::vector<Id>& messages);
  ReadResult mark_all_read(Id caller, Id room);
  UnreadCounts unread_counts(Id caller);
  std::vector<std::pair<Id, std::optional<Message>>> latest(Id caller);
  FirstUnread first_unread(Id caller, Id room);
  ReadByWho read_by_who(Id caller, Id message);
  // Moves the caller's delivered watermark in the room towards up_to_seq (never back, never
  // past last_seq); publishes MessageDelivered when it moved. 400 for a negative up_to_seq,
  // 404 for an unknown room, 403 for a non-member.
  DeliveredResult mark_delivered(Id caller, Id room, Seq up_to_seq);

  // Reactions: adds (add) or removes the caller's reaction emoji on message; idempotent.
  // Returns the message's reactions after the call; publishes ReactionChanged only when it
  // changed something. 404 unknown message, 403 non-member (both before the emoji is
  // looked at), 400 invalid_emoji (check_emoji), 409 too_many_reactions when an add would
  // bring the message past kMaxReactionEmoji distinct emoji.
  Reactions react(Id caller, Id message, std::string_view emoji, bool add);

  // Real-time support
  bool user_exists(Id user);
  // The room's last_seq if user is an active member; 404 / 403 otherwise.
  Seq require_membership(Id user, Id room);
  // Messages with seq > after, ascending, at most limit (for resume); 403 if not a member.
  std::vector<Message> messages_after(Id user, Id room, Seq after, int limit);
  // Every room's badge state for the user: (last_seq, read_seq) per active membership. Read
  // at any time: receivers merge it with live events by the pair's order (unread_tracker.h).
  std::vector<RoomBadge> badge_snapshot(Id user);
  // For receivers filling a gap in a room's seq order (no caller: the receiver delivers only
  // to the room's members): the active members, and the messages with after < seq < before.
  std::vector<Id> active_member_ids(Id room);
  std::vector<Message> messages_between(Id room, Seq after, Seq before, int limit);

  // Presence (chat/presence.h). The user's last_seen as caller may see it: 404 for an unknown
  // user, 403 when they share no room (the caller themselves may). For the announcements: the
  // users who share a room with user (at most limit), and recording when the last one closed.
  std::optional<TimeMs> presence_of(Id caller, Id user);
  std::vector<Id> co_member_ids(Id user, int limit);
  std::optional<TimeMs> last_seen(Id user);
  void set_last_seen(Id user, TimeMs at);
  // Signs the download link of each attachment of the messages read (set once, at start-up).
  void set_upload_urls(std::function<std::string(Id)> url_of) { upload_url_ = std::move(url_of); }

 private:
  void publish(std::vector<EventPtr>& events);
  std::function<std::string(Id)> upload_url_;
  Store& store_;
  EventPublisher* publisher_;
};

}  // namespace parley::chat
