#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/types.h"

namespace parley::chat {

// The primitive operations the domain composes inside one transaction. Implemented by
// storage/sqlite and storage/postgres; all of them see the transaction's snapshot.
class Tx {
 public:
  virtual ~Tx() = default;

  // Users
  virtual std::optional<User> insert_user(std::string_view username, std::string_view password_hash,
                                          TimeMs now) = 0;  // nullopt when the name is taken
  virtual std::optional<UserAuth> user_by_name(std::string_view username) = 0;
  virtual std::optional<User> user_by_id(Id id) = 0;
  virtual std::vector<User> users_by_prefix(std::string_view prefix, int limit) = 0;
  virtual std::optional<UserAuth> user_auth_by_id(Id id) = 0;
  // Tokens: the user's current token version (nullopt: no such user); bump_token_version
  // adds one and returns the new version. set_password_hash replaces the hash only while it
  // is still expected_old (a concurrent change wins otherwise); returns whether it did.
  virtual std::optional<std::int64_t> token_version(Id user) = 0;
  virtual std::optional<std::int64_t> bump_token_version(Id user) = 0;
  virtual bool set_password_hash(Id user, std::string_view expected_old, std::string_view new_hash) = 0;

  // Rooms. lock_room_by_id also serializes concurrent writers of that room (row lock in
  // PostgreSQL; SQLite has one writer already).
  virtual Id insert_room(const std::optional<std::string>& name, RoomType type, Id created_by, TimeMs now,
                         const std::optional<std::string>& direct_key) = 0;
  virtual std::optional<Id> direct_room(std::string_view direct_key) = 0;
  virtual std::optional<RoomRow> room_by_id(Id id) = 0;
  virtual std::optional<RoomRow> lock_room_by_id(Id id) = 0;
  virtual void set_room_last_seq(Id room, Seq seq, TimeMs at) = 0;

  // Members
  virtual std::optional<MemberRow> member(Id room, Id user) = 0;
  virtual void upsert_member(const MemberRow& m) = 0;
  virtual std::vector<MemberUser> active_members(Id room) = 0;  // ordered by user id
  virtual std::vector<UserRoom> rooms_of_user(Id user) = 0;     // newest activity first
  // Presence: whether a and b are active members of one room; the users who share an active
  // room with user (user excluded), ascending, `limit` of them; when user's last connection
  // closed (nullopt: never yet), and setting it.
  virtual bool share_room(Id a, Id b) = 0;
  virtual std::vector<Id> co_member_ids(Id user, int limit) = 0;
  virtual std::optional<TimeMs> last_seen(Id user) = 0;
  virtual void set_last_seen(Id user, TimeMs at) = 0;

  // Messages
  virtual Id insert_message(const Message& m) = 0;  // m.id is ignored; returns the new id
  virtual std::optional<Message> message_by_id(Id id) = 0;
  virtual std::optional<Message> message_by_client_id(Id room, Id sender, std::string_view client_msg_id) = 0;
  virtual std::optional<Message> message_by_seq(Id room, Seq seq) = 0;
  // Messages with after < seq < before, `limit` of them: the lowest seqs, ascending.
  virtual std::vector<Message> messages_ascending(Id room, Seq after, Seq before, int limit) = 0;
  // Messages with after < seq < before, `limit` of them: the highest seqs, descending.
  virtual std::vector<Message> messages_descending(Id room, Seq after, Seq before, int limit) = 0;

  // Read watermark history: one row per move.
  virtual void insert_read_move(Id room, Id user, Seq up_to_seq, TimeMs at) = 0;
  // When the user's watermark in the room first reached seq (nullopt if never).
  virtual std::optional<TimeMs> first_read_at(Id room, Id user, Seq seq) = 0;
  // Delivered watermark history: one row per move made by a `delivered` frame. A move made by
  // a read is in read_moves already (a read implies delivered), so the time the delivered
  // watermark first reached seq is the earlier of first_read_at and first_delivered_move_at.
  virtual void insert_delivered_move(Id room, Id user, Seq up_to_seq, TimeMs at) = 0;
  // When a `delivered` move of the user in the room first reached seq (nullopt if none did).
  virtual std::optional<TimeMs> first_delivered_move_at(Id room, Id user, Seq seq) = 0;
  // Reactions: one row per (message, emoji, user) ever added; a removal keeps the row with
  // active false. Each change's `at` is above every `at` of the message's rows (the domain
  // takes it above reactions_last_at), so it orders the message's changes: receivers order a
  // row's add/remove by it, and reactions_of lists each emoji's users by it. reaction: the row
  // (nullopt if never added); put_reaction writes it; reactions_of: the active reactions of
  // these messages, all of room, in one query (emoji → users by the time of their add).
  struct ReactionRow {
    bool active = false;
    TimeMs at = 0;
  };
  virtual std::optional<ReactionRow> reaction(Id room, Id message, std::string_view emoji, Id user) = 0;
  virtual std::optional<TimeMs> reactions_last_at(Id room, Id message) = 0;  // nullopt: no row
  virtual void put_reaction(Id room, Id message, std::string_view emoji, Id user, bool active, TimeMs at) = 0;
  virtual std::map<Id, Reactions> reactions_of(Id room, const std::vector<Id>& messages) = 0;
  // Uploads (chat/uploads.h). complete_upload sets sha256 and complete once, on a pending
  // upload (false: none pending with that id). pending_uploads counts the user's unfinished
  // ones; expired_uploads lists pending ones created before `before` (oldest first);
  // delete_upload drops a pending one. link_attachment ties an upload to a message at
  // position pos; attachments_of returns the (message id, upload) pairs of the messages, in
  // each message's order, in one query. upload_shared_with: whether user is an active member
  // of a room with a message carrying the upload.
  virtual Id insert_upload(const Upload& u) = 0;
  virtual std::optional<Upload> upload_by_id(Id id) = 0;
  virtual bool complete_upload(Id id, std::string_view sha256) = 0;
  virtual std::int64_t pending_uploads(Id user) = 0;
  virtual std::vector<Upload> expired_uploads(TimeMs before, int limit) = 0;
  virtual bool delete_upload(Id id) = 0;
  virtual void link_attachment(Id message, Id upload, int pos) = 0;
  virtual std::vector<std::pair<Id, Upload>> attachments_of(const std::vector<Id>& messages) = 0;
  virtual bool upload_shared_with(Id upload, Id user) = 0;

  // The time of this write, in commit order: never earlier than that of a write committed
  // before it in the same room (so read_at is never before created_at, whatever the wall
  // clock does). Take it after the write's lock_room_by_id calls: with several writers of one
  // database (PostgreSQL), a time taken before waiting for a room's lock could be earlier than
  // that of the lock's holder, which commits first.
  virtual TimeMs now() = 0;
};

// A transactional store. write() runs fn atomically and returns only once it is durable;
// whatever fn throws rolls it back and is rethrown to the caller. write() and read() may run
// fn more than once (PostgreSQL runs a transaction again after it lost to a concurrent one:
// serialization failure, deadlock, a unique key taken meanwhile), so fn must start from
// scratch each time (the domain's functions reset their outputs first). read() runs fn on a
// consistent snapshot. Both block the calling thread: call them off the IO threads.
//
// Ordering: within one room, writes are serialized (lock_room_by_id), so a room's seqs are
// assigned gap-free in commit order. Nothing else is ordered: writes of different rooms may
// commit in parallel, and the events of committed writes reach receivers in any order —
// receivers order each room by seq (chat/room_order.h) and each badge by its
// (last_seq, read_seq) pair (chat/unread_tracker.h). No store promises commit-order callbacks.
class Store {
 public:
  virtual ~Store() = default;
  virtual void write(const std::function<void(Tx&)>& fn) = 0;
  virtual void read(const std::function<void(Tx&)>& fn) = 0;
  // True while the store answers (for /readyz).
  virtual bool healthy() = 0;
  // The database's random id, made when the database was created and never changed: tokens
  // carry it (auth/jwt.h), so a token never acts on another database, even with the same key.
  virtual const std::string& database_id() const = 0;
};

}  // namespace parley::chat
