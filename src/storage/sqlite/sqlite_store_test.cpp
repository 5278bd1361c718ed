// SqliteStore on a real file: indexes for every access path, group commit, failure isolation
// inside a batch, migrations on reopen.
#include "storage/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "chat/service.h"
#include "common/error.h"

using namespace parley;

namespace {

class TempDb {
 public:
  TempDb() {
    dir_ = std::filesystem::temp_directory_path() /
           ("parley-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }
  ~TempDb() { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "p.db").string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

storage::SqliteOptions options(const std::string& path, std::function<void(std::size_t)> on_commit = {}) {
  storage::SqliteOptions o;
  o.path = path;
  o.readers = 4;
  o.synchronous_full = false;  // the tests check logic, not fsync
  o.on_commit = std::move(on_commit);
  return o;
}

// With a publisher: the event paths run their queries too.
struct Discard : chat::EventPublisher {
  void publish(chat::EventPtr) override {}
};

}  // namespace

TEST(SqliteStore, EveryQueryUsesAnIndex) {
  TempDb db;
  storage::SqliteStore store(options(db.path()));
  Discard sink;
  chat::ChatService chat(store, &sink);
  // Enough rows that a scan would show, then every operation of the domain once or more.
  std::vector<Id> users;
  for (int i = 0; i < 30; ++i) users.push_back(chat.create_user("user" + std::to_string(i), "h").id);
  Id a = users[0], b = users[1], c = users[2];
  Id room = chat.create_group(a, "r", {b, users[3], users[4]}).room.id;
  Id other = chat.create_group(c, "o", {}).room.id;
  auto direct = chat.create_direct(a, c).first.room.id;
  chat.create_direct(c, a);
  std::vector<Id> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(chat.send(i % 2 ? a : b, room, "m" + std::to_string(i), {}).message.id);
  chat.send(c, other, "x", std::string("k1"));
  chat.send(c, other, "x", std::string("k1"));
  chat.send(a, direct, "d", {});
  chat.add_member(a, room, c);
  chat.search_users("user1", 20);
  chat.user_auth("user2");
  chat.get_user(a);
  chat.list_rooms(a);
  chat.get_room(b, room);
  chat.history(a, room, {}, {}, 10);
  chat.history(a, room, 5, {}, 10);
  chat.history(a, room, 5, 30, 10);
  chat.get_message(b, ids[3]);
  chat.read_one(b, ids[10]);
  chat.read_bulk(b, {ids[12], ids[20]});
  chat.mark_all_read(c, room);
  chat.unread_counts(a);
  chat.latest(b);
  chat.first_unread(b, room);
  chat.read_by_who(a, ids[0]);
  chat.badge_snapshot(b);
  chat.active_member_ids(room);
  chat.messages_between(room, 3, 9, 10);
  chat.messages_after(b, room, 3, 10);
  chat.require_membership(b, room);
  chat.user_exists(b);
  chat.token_version(b);
  chat.caller_auth(b);
  chat.revoke_tokens(b);
  chat.change_password(c, "h", "h2");
  chat.remove_member(a, room, c);
  chat.remove_member(b, room, b);
  EXPECT_EQ(store.full_scan_steps(), 0u);
}

TEST(SqliteStore, ConcurrentWritesShareCommits) {
  TempDb db;
  std::atomic<std::size_t> commits{0}, jobs{0};
  storage::SqliteOptions o = options(db.path(), [&](std::size_t n) {
    commits += 1;
    jobs += n;
  });
  o.synchronous_full = true;  // fsync per commit: what group commit saves
  storage::SqliteStore store(o);
  chat::ChatService chat(store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  std::size_t before_jobs = jobs, before_commits = commits;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) chat.send(a, room, "x", {});
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(jobs - before_jobs, 200u);
  EXPECT_LT(commits - before_commits, 200u);  // some commits carried more than one send
  EXPECT_EQ(chat.get_room(a, room).room.last_seq, 200);
}

TEST(SqliteStore, AFailingJobRollsBackAloneAndOthersCommit) {
  TempDb db;
  storage::SqliteStore store(options(db.path()));
  chat::ChatService chat(store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t % 2) {
          try {
            store.write([&](chat::Tx& tx) {
              tx.insert_user("doomed" + std::to_string(t * 100 + i), "h", 1);
              throw Error(ErrorKind::BadInput, "invalid_request", "no");
            });
          } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::BadInput);
            ++refused;
          }
        } else {
          chat.send(a, room, "ok", {});
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused, 80);
  EXPECT_EQ(chat.get_room(a, room).room.last_seq, 80);
  EXPECT_TRUE(chat.search_users("doomed", 50).empty());  // every failed job rolled back
}

TEST(SqliteStore, ReopenKeepsDataAndSchemaVersion) {
  TempDb db;
  Id a = 0;
  {
    storage::SqliteStore store(options(db.path()));
    chat::ChatService chat(store);
    a = chat.create_user("alice", "h").id;
  }
  storage::SqliteStore store(options(db.path()));
  chat::ChatService chat(store);
  EXPECT_EQ(chat.get_user(a).username, "alice");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.path().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT version FROM schema_version", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), storage::SqliteStore::schema_version());
  sqlite3_finalize(s);
  sqlite3_close(raw);
}

TEST(SqliteStore, RefusesADatabaseFromANewerVersion) {
  TempDb db;
  { storage::SqliteStore store(options(db.path())); }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.path().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE schema_version SET version = 999", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_THROW(storage::SqliteStore store(options(db.path())), std::runtime_error);
}

TEST(SqliteStore, ADatabaseGetsARandomIdOnceAndKeepsIt) {
  TempDb db1, db2;
  std::string id;
  {
    storage::SqliteStore store(options(db1.path()));
    id = store.database_id();
  }
  EXPECT_EQ(id.size(), 32u);  // 16 random bytes as hex
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  storage::SqliteStore reopened(options(db1.path()));
  EXPECT_EQ(reopened.database_id(), id);
  storage::SqliteStore other(options(db2.path()));
  EXPECT_NE(other.database_id(), id);
}
