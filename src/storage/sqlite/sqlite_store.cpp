#include "storage/sqlite/sqlite_store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <chrono>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "storage/storage_health.h"

namespace parley::storage {
namespace {

using chat::Message;
using chat::Seq;

// Schema migrations, applied in order; the index + 1 is the version it brings the schema to.
// Never edit a released step: add a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users(
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE rooms(
  id INTEGER PRIMARY KEY,
  name TEXT,
  type INTEGER NOT NULL,
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  last_activity INTEGER NOT NULL,
  direct_key TEXT UNIQUE);
CREATE TABLE members(
  room_id INTEGER NOT NULL REFERENCES rooms(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  read_seq INTEGER NOT NULL,
  delivered_seq INTEGER NOT NULL,
  active INTEGER NOT NULL,
  joined_at INTEGER NOT NULL,
  PRIMARY KEY(room_id, user_id)) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, active, room_id);
CREATE TABLE messages(
  id INTEGER PRIMARY KEY,
  room_id INTEGER NOT NULL REFERENCES rooms(id),
  seq INTEGER NOT NULL,
  sender_id INTEGER NOT NULL REFERENCES users(id),
  content TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  client_msg_id TEXT,
  UNIQUE(room_id, seq));
CREATE UNIQUE INDEX messages_client_id ON messages(room_id, sender_id, client_msg_id)
  WHERE client_msg_id IS NOT NULL;
CREATE TABLE read_moves(
  room_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  up_to_seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(room_id, user_id, up_to_seq)) WITHOUT ROWID;
)sql",
    // Token revocation and the database's identity: a per-user token version (tokens carry
    // it; logout and password change bump it) and a random id made once, when the database
    // is created or first migrated here (tokens carry it too). parley_random_hex: libsodium
    // randomness, registered on the migrating connection.
    R"sql(
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
CREATE TABLE database_identity(
  id TEXT NOT NULL,
  singleton INTEGER PRIMARY KEY CHECK(singleton = 1) DEFAULT 1);
INSERT INTO database_identity(id) VALUES(parley_random_hex(16));
)sql",
    // Delivered (grey double ticks): the moves of the delivered watermark made by `delivered`
    // frames (those made by reads are the read_moves rows), behind delivered_at.
    R"sql(
CREATE TABLE delivered_moves(
  room_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  up_to_seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(room_id, user_id, up_to_seq)) WITHOUT ROWID;
)sql",
    // Reactions: one row per (message, emoji, user) ever added; a removal sets active to 0
    // and keeps the row, so that its `at` only grows (chat::Tx::put_reaction). Keyed by room
    // first: a page's reactions are one range of the key.
    R"sql(
CREATE TABLE reactions(
  room_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  emoji TEXT NOT NULL,
  user_id INTEGER NOT NULL,
  active INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(room_id, message_id, emoji, user_id)) WITHOUT ROWID;
)sql",
    // Presence: when the user's last connection closed (NULL until the first one did).
    R"sql(
ALTER TABLE users ADD COLUMN last_seen INTEGER;
)sql",
    // Attachments: uploads (a pending row until its PUT completes; the bytes are in the file
    // named file_key under the uploads directory) and the uploads each message carries.
    R"sql(
CREATE TABLE uploads(
  id INTEGER PRIMARY KEY,
  uploader INTEGER NOT NULL REFERENCES users(id),
  filename TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT,
  complete INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  file_key TEXT NOT NULL UNIQUE);
CREATE INDEX uploads_pending ON uploads(complete, created_at);
CREATE INDEX uploads_by_uploader ON uploads(uploader, complete);
CREATE TABLE message_attachments(
  message_id INTEGER NOT NULL REFERENCES messages(id),
  pos INTEGER NOT NULL,
  upload_id INTEGER NOT NULL REFERENCES uploads(id),
  PRIMARY KEY(message_id, pos)) WITHOUT ROWID;
CREATE INDEX message_attachments_by_upload ON message_attachments(upload_id, message_id);
)sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// SQL parley_random_hex(n): n random bytes (libsodium) as 2n lower-case hex characters, for
// the migration that makes the database's id. n from 1 to 64.
void random_hex_sql(sqlite3_context* ctx, int, sqlite3_value** argv) {
  sqlite3_int64 n = sqlite3_value_int64(argv[0]);
  if (n < 1 || n > 64 || sodium_init() < 0) {
    sqlite3_result_error(ctx, "parley_random_hex: n must be 1..64 (or libsodium failed)", -1);
    return;
  }
  unsigned char buf[64];
  randombytes_buf(buf, static_cast<std::size_t>(n));
  char hex[2 * 64 + 1];
  sodium_bin2hex(hex, sizeof hex, buf, static_cast<std::size_t>(n));
  sqlite3_result_text(ctx, hex, static_cast<int>(2 * n), SQLITE_TRANSIENT);
}

// After a disk full, the probe's commit alone proves little: its one page can fit in the WAL
// space a failed commit left behind. Healthy again also needs this much free on the filesystem.
constexpr unsigned long long kMinFreeBytesAfterFull = 1024 * 1024;

// Failures outside the client's control: the disk, the file, another process. Everything
// else SQLite reports (a constraint, SQL misuse) is a bug and stays a 500.
bool is_storage_fault(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_NOLFS:
      return true;
    default:
      return false;
  }
}

// What a client is told (the details go to the log).
const char* fault_reason(int rc) {
  if (rc == SQLITE_READONLY_DBMOVED) return "the database file was moved or deleted";
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return "disk full";
    case SQLITE_READONLY:
      return "read-only";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "locked by another process";
    case SQLITE_IOERR:
      return "I/O error";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return "database damaged";
    default:
      return "cannot use the database";
  }
}

// A storage fault: an Error(Unavailable) (503 over REST, `unavailable` over WebSocket) that
// keeps SQLite's code and message for the log.
class StorageFault : public Error {
 public:
  StorageFault(int rc, std::string detail)
      : Error(ErrorKind::Unavailable, "unavailable",
              std::string("storage is unavailable (") + fault_reason(rc) + "); retry shortly"),
        rc_(rc),
        detail_(std::move(detail)) {}
  int rc() const { return rc_; }
  const std::string& detail() const { return detail_; }

 private:
  int rc_;
  std::string detail_;
};

[[noreturn]] void fail_rc(int rc, const std::string& what) {
  std::string detail = what + ": " + sqlite3_errstr(rc) + " (" + std::to_string(rc) + ")";
  if (is_storage_fault(rc)) throw StorageFault(rc, detail);
  throw std::runtime_error(detail);
}

[[noreturn]] void fail(sqlite3* db, const std::string& what, int rc) {
  if (!db) fail_rc(SQLITE_NOMEM, what);
  std::string detail = what + ": " + sqlite3_errmsg(db) + " (" + std::to_string(rc) + ")";
  if (is_storage_fault(rc)) throw StorageFault(rc, detail);
  throw std::runtime_error(detail);
}

// One prepared statement, reset after each use.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s, std::atomic<std::uint64_t>* scans) : db_(db), s_(s), scans_(scans) {}
  ~Stmt() {
    if (scans_) *scans_ += static_cast<std::uint64_t>(sqlite3_stmt_status(s_, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1));
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, const std::optional<std::string>& v) {
    if (v) return bind(i, std::string_view(*v));
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "sqlite step", rc);
  }
  // Runs a statement that returns no row; returns whether it changed a row.
  bool exec() {
    step();
    return sqlite3_changes(db_) > 0;
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::optional<std::string> opt_text(int c) const {
    if (is_null(c)) return std::nullopt;
    return text(c);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, "sqlite bind", rc);
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
  std::atomic<std::uint64_t>* scans_;
};

// A connection with a cache of prepared statements keyed by their SQL text's address
// (every statement is a string literal).
class Conn {
 public:
  // create: only the writer, at start-up, may create the file (a reader opened later while the
  // file is missing must fail, not start an empty database).
  Conn(const std::string& path, bool synchronous_full, int busy_timeout_ms, const std::string& vfs, bool create) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, vfs.empty() ? nullptr : vfs.c_str());
    if (rc != SQLITE_OK) {
      std::string what = "cannot open SQLite database " + path;
      if (db_) what += std::string(": ") + sqlite3_errmsg(db_);
      if (db_) rc = sqlite3_extended_errcode(db_);
      sqlite3_close(db_);
      fail_rc(rc, what);
    }
    try {
      // Only the writer checkpoints and removes the WAL when it closes (last, at shutdown). A
      // reader that believes itself the last connection of its file — one opened on a file
      // put in place of the store's — would otherwise checkpoint the store's WAL into that
      // file and delete it, and the committed transactions in it with it.
      if (!create) sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      sqlite3_extended_result_codes(db_, 1);
      sqlite3_busy_timeout(db_, busy_timeout_ms);
      exec("PRAGMA foreign_keys=ON");
      if (path != ":memory:") {
        // Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY at once
        // (no busy handler: two connections each holding a shared lock and waiting for the
        // other would deadlock) while another connection, of this process or another, holds
        // the file: tried again every 10 ms for up to the busy timeout.
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
        for (;;) {
          try {
            exec("PRAGMA journal_mode=WAL");
            break;
          } catch (const StorageFault& e) {
            if ((e.rc() & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= until) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
      }
      exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
  }
  ~Conn() {
    for (auto& [k, s] : cache_) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  void exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      std::string detail = std::string("sqlite: ") + msg + " (" + std::to_string(rc) + ") in " + sql;
      if (is_storage_fault(rc)) throw StorageFault(rc, detail);
      throw std::runtime_error(detail);
    }
  }
  Stmt prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* s = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) fail(db_, std::string("sqlite prepare: ") + sql, rc);
      it = cache_.emplace(sql, s).first;
    }
    return Stmt(db_, it->second, scans_);
  }
  sqlite3* raw() { return db_; }
  // WAL mode does not notice a database file renamed or unlinked under it: commits would go
  // on into a file that a restart never opens. Checked before every commit.
  void check_not_moved() {
    int moved = 0;
    if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
      throw StorageFault(SQLITE_READONLY_DBMOVED, "the database file was moved or deleted while open");
  }
  // Counts every step of a full table scan into *scans (statement status FULLSCAN_STEP).
  void count_full_scans(std::atomic<std::uint64_t>* scans) { scans_ = scans; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
  std::atomic<std::uint64_t>* scans_ = nullptr;
};

// Row readers: each object is read from its columns in one place. A query selects the
// matching column list below (USER_COLS, MEMBER_COLS, ROOM_COLS, MSG_COLS) first; columns of
// its own come after it.
chat::User user_from(const Stmt& s) { return chat::User{s.i64(0), s.text(1), s.i64(2)}; }

Message message_from(const Stmt& s) {
  Message m;
  m.id = s.i64(0);
  m.room_id = s.i64(1);
  m.seq = s.i64(2);
  m.sender_id = s.i64(3);
  m.content = s.text(4);
  m.created_at = s.i64(5);
  m.client_msg_id = s.opt_text(6);
  return m;
}

chat::RoomRow room_from(const Stmt& s) {
  chat::RoomRow r;
  r.id = s.i64(0);
  r.name = s.opt_text(1);
  r.type = s.i64(2) == 1 ? chat::RoomType::Direct : chat::RoomType::Group;
  r.created_by = s.i64(3);
  r.created_at = s.i64(4);
  r.last_seq = s.i64(5);
  r.last_activity = s.i64(6);
  return r;
}

chat::MemberRow member_from(const Stmt& s, Id room, Id user) {
  return chat::MemberRow{room, user, s.i64(0), s.i64(1), s.i64(2) != 0, s.i64(3)};
}

// The first row through read(s), or nullopt when there is none.
template <class Read>
auto first_row(Stmt& s, Read read) -> std::optional<decltype(read(s))> {
  if (!s.step()) return std::nullopt;
  return read(s);
}

// Every row through read(s).
template <class Read>
auto all_rows(Stmt& s, Read read) -> std::vector<decltype(read(s))> {
  std::vector<decltype(read(s))> out;
  while (s.step()) out.push_back(read(s));
  return out;
}

constexpr auto int_row = [](const Stmt& r) { return r.i64(0); };  // a row of one integer

#define USER_COLS "u.id, u.username, u.created_at"
#define MEMBER_COLS "m.read_seq, m.delivered_seq, m.active, m.joined_at"
#define ROOM_COLS "r.id, r.name, r.type, r.created_by, r.created_at, r.last_seq, r.last_activity"
#define MSG_COLS "id, room_id, seq, sender_id, content, created_at, client_msg_id"
#define UPLOAD_COLS "u.id, u.uploader, u.filename, u.content_type, u.size, u.sha256, u.complete, u.created_at, u.file_key"

chat::Upload upload_from(const Stmt& s, int c = 0) {
  chat::Upload u;
  u.id = s.i64(c);
  u.uploader = s.i64(c + 1);
  u.filename = s.text(c + 2);
  u.content_type = s.text(c + 3);
  u.size = s.i64(c + 4);
  u.sha256 = s.opt_text(c + 5).value_or("");
  u.complete = s.i64(c + 6) != 0;
  u.created_at = s.i64(c + 7);
  u.file_key = s.text(c + 8);
  return u;
}

class SqliteTx final : public chat::Tx {
 public:
  explicit SqliteTx(Conn& c) : c_(c) {}

  std::optional<chat::User> insert_user(std::string_view username, std::string_view hash, TimeMs now) override {
    auto s = c_.prepare(
        "INSERT INTO users(username, password_hash, created_at) VALUES(?,?,?) "
        "ON CONFLICT(username) DO NOTHING");
    if (!s.bind(1, username).bind(2, hash).bind(3, now).exec()) return std::nullopt;
    return chat::User{sqlite3_last_insert_rowid(c_.raw()), std::string(username), now};
  }
  std::optional<chat::UserAuth> user_by_name(std::string_view username) override {
    auto s = c_.prepare("SELECT " USER_COLS ", u.password_hash, u.token_version FROM users u WHERE u.username=?");
    s.bind(1, username);
    return first_row(s, [](const Stmt& r) { return chat::UserAuth{user_from(r), r.text(3), r.i64(4)}; });
  }
  std::optional<chat::UserAuth> user_auth_by_id(Id id) override {
    auto s = c_.prepare("SELECT " USER_COLS ", u.password_hash, u.token_version FROM users u WHERE u.id=?");
    s.bind(1, id);
    return first_row(s, [](const Stmt& r) { return chat::UserAuth{user_from(r), r.text(3), r.i64(4)}; });
  }
  std::optional<std::int64_t> token_version(Id user) override {
    auto s = c_.prepare("SELECT token_version FROM users WHERE id=?");
    s.bind(1, user);
    return first_row(s, int_row);
  }
  std::optional<std::int64_t> bump_token_version(Id user) override {
    auto s = c_.prepare("UPDATE users SET token_version = token_version + 1 WHERE id=? RETURNING token_version");
    s.bind(1, user);
    return first_row(s, int_row);
  }
  bool set_password_hash(Id user, std::string_view expected_old, std::string_view new_hash) override {
    return c_.prepare("UPDATE users SET password_hash=? WHERE id=? AND password_hash=?")
        .bind(1, new_hash)
        .bind(2, user)
        .bind(3, expected_old)
        .exec();
  }
  std::optional<chat::User> user_by_id(Id id) override {
    auto s = c_.prepare("SELECT " USER_COLS " FROM users u WHERE u.id=?");
    s.bind(1, id);
    return first_row(s, user_from);
  }
  std::vector<chat::User> users_by_prefix(std::string_view prefix, int limit) override {
    // Usernames hold only [a-z0-9_.-], all below '~', so [prefix, prefix + '~') is the range.
    auto s = c_.prepare("SELECT " USER_COLS
                        " FROM users u WHERE u.username >= ?1 AND u.username < ?1 || '~' "
                        "ORDER BY u.username LIMIT ?2");
    s.bind(1, prefix).bind(2, limit);
    return all_rows(s, user_from);
  }

  Id insert_room(const std::optional<std::string>& name, chat::RoomType type, Id created_by, TimeMs now,
                 const std::optional<std::string>& direct_key) override {
    auto s = c_.prepare(
        "INSERT INTO rooms(name, type, created_by, created_at, last_seq, last_activity, direct_key) "
        "VALUES(?,?,?,?,0,?,?)");
    s.bind(1, name).bind(2, type == chat::RoomType::Direct ? 1 : 0).bind(3, created_by).bind(4, now).bind(5, now);
    s.bind(6, direct_key).exec();
    return sqlite3_last_insert_rowid(c_.raw());
  }
  std::optional<Id> direct_room(std::string_view key) override {
    auto s = c_.prepare("SELECT id FROM rooms WHERE direct_key=?");
    s.bind(1, key);
    return first_row(s, int_row);
  }
  std::optional<chat::RoomRow> room_by_id(Id id) override {
    auto s = c_.prepare("SELECT " ROOM_COLS " FROM rooms r WHERE r.id=?");
    s.bind(1, id);
    return first_row(s, room_from);
  }
  // One writer connection serializes every write transaction already.
  std::optional<chat::RoomRow> lock_room_by_id(Id id) override { return room_by_id(id); }
  void set_room_last_seq(Id room, Seq seq, TimeMs at) override {
    c_.prepare("UPDATE rooms SET last_seq=?, last_activity=? WHERE id=?").bind(1, seq).bind(2, at).bind(3, room).exec();
  }

  std::optional<chat::MemberRow> member(Id room, Id user) override {
    auto s = c_.prepare("SELECT " MEMBER_COLS " FROM members m WHERE m.room_id=? AND m.user_id=?");
    s.bind(1, room).bind(2, user);
    return first_row(s, [room, user](const Stmt& r) { return member_from(r, room, user); });
  }
  void upsert_member(const chat::MemberRow& m) override {
    auto s = c_.prepare(
        "INSERT INTO members(room_id, user_id, read_seq, delivered_seq, active, joined_at) VALUES(?,?,?,?,?,?) "
        "ON CONFLICT(room_id, user_id) DO UPDATE SET read_seq=excluded.read_seq, "
        "delivered_seq=excluded.delivered_seq, active=excluded.active, joined_at=excluded.joined_at");
    s.bind(1, m.room_id).bind(2, m.user_id).bind(3, m.read_seq).bind(4, m.delivered_seq).bind(5, m.active ? 1 : 0);
    s.bind(6, m.joined_at).exec();
  }
  std::vector<chat::MemberUser> active_members(Id room) override {
    auto s = c_.prepare("SELECT " USER_COLS
                        ", m.read_seq, m.delivered_seq FROM members m "
                        "JOIN users u ON u.id = m.user_id WHERE m.room_id=? AND m.active=1 ORDER BY m.user_id");
    s.bind(1, room);
    return all_rows(s, [](const Stmt& r) { return chat::MemberUser{user_from(r), r.i64(3), r.i64(4)}; });
  }
  std::vector<chat::UserRoom> rooms_of_user(Id user) override {
    auto s = c_.prepare("SELECT " ROOM_COLS
                        ", m.read_seq FROM members m JOIN rooms r ON r.id = m.room_id "
                        "WHERE m.user_id=? AND m.active=1 ORDER BY r.last_activity DESC, r.id DESC");
    s.bind(1, user);
    return all_rows(s, [](const Stmt& r) { return chat::UserRoom{room_from(r), r.i64(7)}; });
  }

  bool share_room(Id a, Id b) override {
    auto s = c_.prepare(
        "SELECT 1 FROM members x JOIN members y ON y.room_id = x.room_id AND y.user_id=?2 AND y.active=1 "
        "WHERE x.user_id=?1 AND x.active=1 LIMIT 1");
    s.bind(1, a).bind(2, b);
    return first_row(s, int_row).has_value();
  }
  std::vector<Id> co_member_ids(Id user, int limit) override {
    auto s = c_.prepare(
        "SELECT DISTINCT y.user_id FROM members x JOIN members y ON y.room_id = x.room_id AND y.active=1 "
        "WHERE x.user_id=?1 AND x.active=1 AND y.user_id<>?1 ORDER BY y.user_id LIMIT ?2");
    s.bind(1, user).bind(2, limit);
    return all_rows(s, int_row);
  }
  std::optional<TimeMs> last_seen(Id user) override {
    auto s = c_.prepare("SELECT last_seen FROM users WHERE id=? AND last_seen IS NOT NULL");
    s.bind(1, user);
    return first_row(s, int_row);
  }
  void set_last_seen(Id user, TimeMs at) override {
    c_.prepare("UPDATE users SET last_seen=? WHERE id=?").bind(1, at).bind(2, user).exec();
  }

  Id insert_message(const Message& m) override {
    auto s = c_.prepare(
        "INSERT INTO messages(room_id, seq, sender_id, content, created_at, client_msg_id) "
        "VALUES(?,?,?,?,?,?)");
    s.bind(1, m.room_id).bind(2, m.seq).bind(3, m.sender_id).bind(4, std::string_view(m.content));
    s.bind(5, m.created_at).bind(6, m.client_msg_id).exec();
    return sqlite3_last_insert_rowid(c_.raw());
  }
  std::optional<Message> message_by_id(Id id) override {
    auto s = c_.prepare("SELECT " MSG_COLS " FROM messages WHERE id=?");
    s.bind(1, id);
    return first_row(s, message_from);
  }
  std::optional<Message> message_by_client_id(Id room, Id sender, std::string_view cmid) override {
    auto s = c_.prepare("SELECT " MSG_COLS " FROM messages WHERE room_id=? AND sender_id=? AND client_msg_id=?");
    s.bind(1, room).bind(2, sender).bind(3, cmid);
    return first_row(s, message_from);
  }
  std::optional<Message> message_by_seq(Id room, Seq seq) override {
    auto s = c_.prepare("SELECT " MSG_COLS " FROM messages WHERE room_id=? AND seq=?");
    s.bind(1, room).bind(2, seq);
    return first_row(s, message_from);
  }
  std::vector<Message> messages_ascending(Id room, Seq after, Seq before, int limit) override {
    return messages_between("SELECT " MSG_COLS
                            " FROM messages WHERE room_id=? AND seq>? AND seq<? ORDER BY seq LIMIT ?",
                            room, after, before, limit);
  }
  std::vector<Message> messages_descending(Id room, Seq after, Seq before, int limit) override {
    return messages_between("SELECT " MSG_COLS
                            " FROM messages WHERE room_id=? AND seq>? AND seq<? ORDER BY seq DESC LIMIT ?",
                            room, after, before, limit);
  }

  Id insert_upload(const chat::Upload& u) override {
    auto s = c_.prepare(
        "INSERT INTO uploads(uploader, filename, content_type, size, created_at, file_key) VALUES(?,?,?,?,?,?)");
    s.bind(1, u.uploader).bind(2, std::string_view(u.filename)).bind(3, std::string_view(u.content_type));
    s.bind(4, u.size).bind(5, u.created_at).bind(6, std::string_view(u.file_key)).exec();
    return sqlite3_last_insert_rowid(c_.raw());
  }
  std::optional<chat::Upload> upload_by_id(Id id) override {
    auto s = c_.prepare("SELECT " UPLOAD_COLS " FROM uploads u WHERE u.id=?");
    s.bind(1, id);
    return first_row(s, [](const Stmt& r) { return upload_from(r); });
  }
  bool complete_upload(Id id, std::string_view sha256) override {
    return c_.prepare("UPDATE uploads SET complete=1, sha256=? WHERE id=? AND complete=0").bind(1, sha256).bind(2, id).exec();
  }
  std::int64_t pending_uploads(Id user) override {
    auto s = c_.prepare("SELECT count(*) FROM uploads WHERE uploader=? AND complete=0");
    s.bind(1, user);
    return first_row(s, int_row).value_or(0);
  }
  std::vector<chat::Upload> expired_uploads(TimeMs before, int limit) override {
    auto s = c_.prepare("SELECT " UPLOAD_COLS
                        " FROM uploads u WHERE u.complete=0 AND u.created_at<? ORDER BY u.created_at LIMIT ?");
    s.bind(1, before).bind(2, limit);
    return all_rows(s, [](const Stmt& r) { return upload_from(r); });
  }
  bool delete_upload(Id id) override {
    return c_.prepare("DELETE FROM uploads WHERE id=? AND complete=0").bind(1, id).exec();
  }
  void link_attachment(Id message, Id upload, int pos) override {
    c_.prepare("INSERT INTO message_attachments(message_id, pos, upload_id) VALUES(?,?,?)")
        .bind(1, message)
        .bind(2, pos)
        .bind(3, upload)
        .exec();
  }
  std::vector<std::pair<Id, chat::Upload>> attachments_of(const std::vector<Id>& messages) override {
    if (messages.empty()) return {};
    std::string ids = "[";
    for (Id m : messages) ids += (ids.size() > 1 ? "," : "") + std::to_string(m);
    ids += "]";
    auto s = c_.prepare("SELECT a.message_id, " UPLOAD_COLS
                        " FROM message_attachments a JOIN uploads u ON u.id=a.upload_id"
                        " WHERE a.message_id IN (SELECT value FROM json_each(?)) ORDER BY a.message_id, a.pos");
    s.bind(1, std::string_view(ids));
    return all_rows(s, [](const Stmt& r) { return std::pair<Id, chat::Upload>(r.i64(0), upload_from(r, 1)); });
  }
  bool upload_shared_with(Id upload, Id user) override {
    auto s = c_.prepare(
        "SELECT 1 FROM message_attachments a JOIN messages m ON m.id=a.message_id"
        " JOIN members mb ON mb.room_id=m.room_id AND mb.user_id=? AND mb.active=1 WHERE a.upload_id=? LIMIT 1");
    s.bind(1, user).bind(2, upload);
    return s.step();
  }

  void insert_read_move(Id room, Id user, Seq up_to_seq, TimeMs at) override {
    // A re-join can land on a watermark reached before: the first time is the one kept.
    insert_move("INSERT INTO read_moves(room_id, user_id, up_to_seq, at) VALUES(?,?,?,?) ON CONFLICT DO NOTHING", room,
                user, up_to_seq, at);
  }
  TimeMs now() override {
    last_now_ = std::max(last_now_, now_ms());
    return last_now_;
  }

  void insert_delivered_move(Id room, Id user, Seq up_to_seq, TimeMs at) override {
    insert_move("INSERT INTO delivered_moves(room_id, user_id, up_to_seq, at) VALUES(?,?,?,?) ON CONFLICT DO NOTHING",
                room, user, up_to_seq, at);
  }
  std::optional<TimeMs> first_delivered_move_at(Id room, Id user, Seq seq) override {
    return first_move_at(
        "SELECT at FROM delivered_moves WHERE room_id=? AND user_id=? AND up_to_seq>=? ORDER BY up_to_seq LIMIT 1", room,
        user, seq);
  }

  std::optional<ReactionRow> reaction(Id room, Id message, std::string_view emoji, Id user) override {
    auto s = c_.prepare("SELECT active, at FROM reactions WHERE room_id=? AND message_id=? AND emoji=? AND user_id=?");
    s.bind(1, room).bind(2, message).bind(3, emoji).bind(4, user);
    return first_row(s, [](const Stmt& r) { return ReactionRow{r.i64(0) != 0, r.i64(1)}; });
  }
  std::optional<TimeMs> reactions_last_at(Id room, Id message) override {
    auto s = c_.prepare("SELECT max(at) FROM reactions WHERE room_id=? AND message_id=?");
    s.bind(1, room).bind(2, message);
    if (!s.step() || s.is_null(0)) return std::nullopt;
    return s.i64(0);
  }
  void put_reaction(Id room, Id message, std::string_view emoji, Id user, bool active, TimeMs at) override {
    c_.prepare(
          "INSERT INTO reactions(room_id, message_id, emoji, user_id, active, at) VALUES(?,?,?,?,?,?) "
          "ON CONFLICT DO UPDATE SET active=excluded.active, at=excluded.at")
        .bind(1, room)
        .bind(2, message)
        .bind(3, emoji)
        .bind(4, user)
        .bind(5, active ? 1 : 0)
        .bind(6, at)
        .exec();
  }
  // One range of the key: the room's messages from the lowest id asked for to the highest.
  std::map<Id, chat::Reactions> reactions_of(Id room, const std::vector<Id>& messages) override {
    std::map<Id, chat::Reactions> out;
    if (messages.empty()) return out;
    auto [lo, hi] = std::minmax_element(messages.begin(), messages.end());
    auto s = c_.prepare(
        "SELECT message_id, emoji, user_id FROM reactions WHERE room_id=? AND message_id>=? AND message_id<=? "
        "AND active=1 ORDER BY message_id, at, user_id");
    s.bind(1, room).bind(2, *lo).bind(3, *hi);
    std::set<Id> wanted(messages.begin(), messages.end());
    while (s.step())
      if (Id m = s.i64(0); wanted.count(m)) out[m][s.text(1)].push_back(s.i64(2));
    return out;
  }

  std::optional<TimeMs> first_read_at(Id room, Id user, Seq seq) override {
    return first_move_at(
        "SELECT at FROM read_moves WHERE room_id=? AND user_id=? AND up_to_seq>=? ORDER BY up_to_seq LIMIT 1", room,
        user, seq);
  }

 private:
  // A watermark's move history (read_moves, delivered_moves): sql inserts (room, user,
  // up_to_seq, at), or selects the time of the first move of (room, user) reaching seq.
  void insert_move(const char* sql, Id room, Id user, Seq up_to_seq, TimeMs at) {
    c_.prepare(sql).bind(1, room).bind(2, user).bind(3, up_to_seq).bind(4, at).exec();
  }
  std::optional<TimeMs> first_move_at(const char* sql, Id room, Id user, Seq seq) {
    auto s = c_.prepare(sql);
    s.bind(1, room).bind(2, user).bind(3, seq);
    return first_row(s, int_row);
  }

  // sql: the messages of one room with after < seq < before, in some order, at most limit.
  std::vector<Message> messages_between(const char* sql, Id room, Seq after, Seq before, int limit) {
    auto s = c_.prepare(sql);
    s.bind(1, room).bind(2, after).bind(3, before).bind(4, limit);
    return all_rows(s, message_from);
  }

  Conn& c_;
  TimeMs last_now_ = 0;  // the writer's one Tx outlives every job: times only grow
};

// A job's failure travels back as plain values and is rethrown as a fresh exception on the
// caller's thread: exception objects are never shared between threads.
struct JobError {
  bool failed = false;
  bool domain = false;  // a parley::Error (expected failure)
  bool fault = false;   // a StorageFault (detail holds SQLite's words)
  int rc = 0;           // SQLite's code of a fault
  ErrorKind kind = ErrorKind::Unavailable;
  std::string code, message, detail;

  void capture() noexcept {
    failed = true;
    try {
      throw;
    } catch (const StorageFault& e) {
      domain = fault = true;
      rc = e.rc();
      kind = e.kind();
      code = e.code();
      message = e.what();
      detail = e.detail();
    } catch (const Error& e) {
      domain = true;
      kind = e.kind();
      code = e.code();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "unknown error";
    }
  }
  [[noreturn]] void rethrow() const {
    if (domain) throw Error(kind, code, message);
    throw std::runtime_error(message);
  }
};

struct WriteJob {
  const std::function<void(chat::Tx&)>* fn;
  std::promise<void> done;
  JobError error;
};

}  // namespace

struct SqliteStore::Impl {
  explicit Impl(SqliteOptions o)
      : opts(std::move(o)),
        memory(opts.path == ":memory:"),
        health(opts.fault_log_interval, StorageHealth::Hooks{opts.on_health, opts.on_failed}) {}
  SqliteOptions opts;
  bool memory = false;
  StorageHealth health;
  std::unique_ptr<Conn> writer_conn;
  // Writer thread only: when the last probe ran; whether a client write committed while
  // unhealthy (then the probe runs at once to confirm the recovery).
  std::chrono::steady_clock::time_point last_probe;
  bool probe_now = false;
  bool space_short = false;  // the last outage began with a disk full

  // Writer queue. Bounded by the callers: each caller blocks until its job is done, and the
  // callers are the storage pool's threads (--storage-threads), so at most that many wait.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WriteJob*> queue;
  bool stopping = false;
  bool poke = false;  // a read reported a fault: the writer should mind the summary line
  std::thread writer;

  // Read connections (WAL lets them read while the writer writes).
  std::mutex readers_mu;
  std::condition_variable readers_cv;
  std::vector<std::unique_ptr<Conn>> idle_readers;
  std::size_t opened_readers = 0;

  // Rows visited by full table scans since start (every access path should use an index).
  std::atomic<std::uint64_t> full_scans{0};

  std::string database_id;  // read once after migrating

  void migrate() {
    Conn& c = *writer_conn;
    if (int rc = sqlite3_create_function(c.raw(), "parley_random_hex", 1, SQLITE_UTF8, nullptr, random_hex_sql,
                                         nullptr, nullptr);
        rc != SQLITE_OK)
      fail(c.raw(), "sqlite create_function", rc);
    c.exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    c.exec("BEGIN IMMEDIATE");
    try {
      int version = 0;
      {
        auto s = c.prepare("SELECT version FROM schema_version");
        if (s.step())
          version = static_cast<int>(s.i64(0));
        else
          c.exec("INSERT INTO schema_version(version) VALUES(0)");
      }
      if (version > kSchemaVersion)
        throw std::runtime_error("database schema version " + std::to_string(version) +
                                 " is newer than this binary's " + std::to_string(kSchemaVersion));
      for (int v = version; v < kSchemaVersion; ++v) c.exec(kMigrations[v]);
      c.prepare("UPDATE schema_version SET version=?").bind(1, kSchemaVersion).exec();
      {
        auto s = c.prepare("SELECT id FROM database_identity");
        if (!s.step() || s.text(0).empty()) throw std::runtime_error("the database has no id");
        database_id = s.text(0);
      }
      c.exec("COMMIT");
    } catch (...) {
      c.exec("ROLLBACK");
      throw;
    }
  }

  std::unique_ptr<Conn> open_conn(bool create = false) const {
    return std::make_unique<Conn>(opts.path, opts.synchronous_full, opts.busy_timeout_ms, opts.vfs, create);
  }

  // The database file the writer opened at start-up: a reader opened later must open the same
  // one (not a file moved or copied into its place since).
  std::optional<std::pair<dev_t, ino_t>> identity;
  static std::optional<std::pair<dev_t, ino_t>> file_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return std::make_pair(st.st_dev, st.st_ino);
  }

  void run_writer() {
    SqliteTx tx(*writer_conn);  // one for every batch: its times only grow
    std::vector<WriteJob*> batch;
    for (;;) {
      {
        std::unique_lock lk(mu);
        auto ready = [&] { return stopping || !queue.empty() || poke; };
        // While writes fail (or faults wait to be summarized) wake up to probe and report.
        if (health.pending())
          cv.wait_for(lk, opts.probe_interval, ready);
        else
          cv.wait(lk, ready);
        poke = false;
        if (queue.empty()) {
          if (stopping) return;  // stopping and drained
          lk.unlock();
          idle_tick();
          continue;
        }
        std::size_t n = std::min(queue.size(), std::max<std::size_t>(1, opts.group_commit_max));
        batch.assign(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
        queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
      }
      run_batch(batch, tx);
      batch.clear();
      idle_tick();
    }
  }

  // After a batch, or woken without work: probe while unhealthy, report what is due.
  void idle_tick() {
    auto now = std::chrono::steady_clock::now();
    if (!health.healthy() && (probe_now || now - last_probe >= opts.probe_interval)) probe();
    health.tick(std::chrono::steady_clock::now());
  }

  // One transaction: each job in its own SAVEPOINT, one COMMIT for all.
  void run_batch(std::vector<WriteJob*>& batch, SqliteTx& tx) {
    Conn& c = *writer_conn;
    JobError batch_error;
    try {
      c.exec("BEGIN IMMEDIATE");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        c.exec("SAVEPOINT job");
        try {
          (*batch[i]->fn)(tx);
          c.exec("RELEASE job");
        } catch (...) {
          batch[i]->error.capture();
          // A disk full, I/O error or lock can make SQLite roll the whole transaction back:
          // then every job of the batch failed with it (nothing of it is stored).
          if (sqlite3_get_autocommit(c.raw())) {
            batch_error = batch[i]->error;
            break;
          }
          c.exec("ROLLBACK TO job");
          c.exec("RELEASE job");
        }
      }
      if (!batch_error.failed) {
        if (!memory) c.check_not_moved();
        c.exec("COMMIT");
      }
    } catch (...) {
      batch_error.capture();
    }
    if (batch_error.failed && !sqlite3_get_autocommit(c.raw()))
      sqlite3_exec(c.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
    auto now = std::chrono::steady_clock::now();
    if (!batch_error.failed) {
      if (opts.on_commit) opts.on_commit(batch.size());
      // Healthy again only once the probe commits: a small write can fit in what a failed
      // commit left behind on a full disk, and readiness would flap with every such write.
      if (!health.healthy()) probe_now = true;
      // A job refused by a fault of its own while the batch committed (rare: statement-level).
      std::size_t faulted = 0;
      const JobError* last = nullptr;
      for (auto* job : batch)
        if (job->error.fault) ++faulted, last = &job->error;
      if (faulted) health.fault(faulted, last->detail, false, now);
    } else if (batch_error.fault) {
      if ((batch_error.rc & 0xff) == SQLITE_FULL) space_short = true;
      health.fault(batch.size(), batch_error.detail, true, now);
    }
    for (auto* job : batch) {
      if (batch_error.failed) job->error = batch_error;
      job->done.set_value();
    }
  }

  // A small real write, committed (and synced like any commit): the one way to learn that a
  // full disk has room again, a read-only file is writable, a lock was released, a moved file
  // is back. A row added to schema_version and removed again in the same transaction dirties
  // its page — one WAL frame and an fsync — and changes nothing (rewriting a row unchanged
  // would not do: SQLite skips a write that changes no byte). No schema of its own. Waits for
  // a lock only briefly, so that queued client writes are not held up.
  void probe() {
    Conn& c = *writer_conn;
    last_probe = std::chrono::steady_clock::now();
    probe_now = false;
    sqlite3_busy_timeout(c.raw(), std::min(opts.busy_timeout_ms, 100));
    try {
      c.exec("BEGIN IMMEDIATE");
      c.exec("INSERT INTO schema_version(version) VALUES(-1)");
      c.exec("DELETE FROM schema_version WHERE rowid=last_insert_rowid()");
      if (!memory) c.check_not_moved();
      c.exec("COMMIT");
      if (space_short && !memory) {
        auto free = free_bytes();
        if (free && *free < kMinFreeBytesAfterFull)
          throw StorageFault(SQLITE_FULL, "only " + std::to_string(*free / 1024) +
                                              " KiB free on the database's filesystem (1024 KiB wanted after a disk full)");
      }
      space_short = false;
      health.write_ok(std::chrono::steady_clock::now());
    } catch (const StorageFault& f) {
      if (!sqlite3_get_autocommit(c.raw())) sqlite3_exec(c.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
      if ((f.rc() & 0xff) == SQLITE_FULL) space_short = true;
      health.fault(0, "probe: " + f.detail(), true, std::chrono::steady_clock::now());
    } catch (const std::exception& e) {
      if (!sqlite3_get_autocommit(c.raw())) sqlite3_exec(c.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
      health.fault(0, std::string("probe: ") + e.what(), true, std::chrono::steady_clock::now());
    }
    sqlite3_busy_timeout(c.raw(), opts.busy_timeout_ms);
  }

  // Bytes free for unprivileged writers on the database's filesystem (nullopt: unknown).
  std::optional<unsigned long long> free_bytes() const {
    std::string dir = std::filesystem::path(opts.path).parent_path().string();
    struct statvfs st {};
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<unsigned long long>(st.f_bavail) * st.f_frsize;
  }

  std::unique_ptr<Conn> acquire_reader() {
    std::unique_lock lk(readers_mu);
    readers_cv.wait(lk, [&] { return !idle_readers.empty() || opened_readers < opts.readers; });
    if (!idle_readers.empty()) {
      auto c = std::move(idle_readers.back());
      idle_readers.pop_back();
      return c;
    }
    ++opened_readers;
    lk.unlock();
    try {
      // Only the file the writer has open: not one moved or copied into its place since.
      auto same_file = [&] { return !identity || file_identity(opts.path) == identity; };
      if (!same_file()) throw StorageFault(SQLITE_READONLY_DBMOVED, "the database file is not the one opened at start");
      auto c = open_conn();
      if (!same_file()) throw StorageFault(SQLITE_READONLY_DBMOVED, "the database file is not the one opened at start");
      c->count_full_scans(&full_scans);
      return c;
    } catch (...) {
      std::lock_guard g(readers_mu);
      --opened_readers;
      readers_cv.notify_one();
      throw;
    }
  }
  void release_reader(std::unique_ptr<Conn> c) {
    std::lock_guard g(readers_mu);
    idle_readers.push_back(std::move(c));
    readers_cv.notify_one();
  }
};

SqliteStore::SqliteStore(SqliteOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {
  impl_->writer_conn = impl_->open_conn(/*create=*/true);
  if (!impl_->memory) impl_->identity = Impl::file_identity(impl_->opts.path);
  impl_->migrate();
  impl_->writer_conn->count_full_scans(&impl_->full_scans);
  impl_->writer = std::thread([this] { impl_->run_writer(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard g(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

void SqliteStore::write(const std::function<void(chat::Tx&)>& fn) {
  WriteJob job{&fn, {}};
  auto fut = job.done.get_future();
  {
    std::lock_guard g(impl_->mu);
    if (impl_->stopping) throw Error(ErrorKind::Unavailable, "unavailable", "storage is shutting down");
    impl_->queue.push_back(&job);
  }
  impl_->cv.notify_one();
  fut.get();
  if (job.error.failed) job.error.rethrow();
}

void SqliteStore::read(const std::function<void(chat::Tx&)>& fn) {
  if (impl_->memory) {  // one in-memory database, one connection: reads queue with writes
    write(fn);
    return;
  }
  // A read that fails on a fault is refused (503) and reported, but does not decide health:
  // readiness follows writes (docs/decisions.md "Storage faults").
  try {
    auto conn = impl_->acquire_reader();
    struct Return {
      Impl* impl;
      std::unique_ptr<Conn>* c;
      ~Return() { impl->release_reader(std::move(*c)); }
    } ret{impl_.get(), &conn};
    conn->exec("BEGIN");
    try {
      SqliteTx tx(*conn);
      fn(tx);
      conn->exec("COMMIT");
    } catch (...) {
      if (!sqlite3_get_autocommit(conn->raw())) sqlite3_exec(conn->raw(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  } catch (const StorageFault& f) {
    impl_->health.fault(1, "read: " + f.detail(), false, std::chrono::steady_clock::now());
    {
      std::lock_guard g(impl_->mu);
      impl_->poke = true;  // the writer summarizes it in due time
    }
    impl_->cv.notify_one();
    throw;
  }
}

bool SqliteStore::healthy() { return impl_->health.healthy(); }

int SqliteStore::schema_version() { return kSchemaVersion; }

const std::string& SqliteStore::database_id() const { return impl_->database_id; }

std::uint64_t SqliteStore::full_scan_steps() const { return impl_->full_scans.load(); }

}  // namespace parley::storage
