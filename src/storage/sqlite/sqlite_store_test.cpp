// SqliteStore on a real file, what is SQLite's own: indexes for every access path, group
// commit. The contract every backend keeps (failure isolation, migrations, concurrent
// instances) is tested on each in storage/store_test.cpp.
#include "storage/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "chat/service.h"
#include "chat/uploads.h"
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
  chat.co_member_ids(a, 100);
  chat.set_last_seen(a, 5);
  chat.last_seen(a);
  chat.presence_of(b, a);
  chat.remove_member(a, room, c);
  chat.remove_member(b, room, b);
  chat::UploadService uploads(store, chat::UploadLimits{});
  auto up = uploads.create(a, "f.txt", "text/plain", 3, std::string(32, 'a'));
  uploads.pending_for_put(a, up.id);
  uploads.complete(a, up.id, std::string(64, 'b'));
  chat.send(a, room, "file", {}, {}, {up.id});
  uploads.for_download(a, up.id);
  uploads.for_download(users[3], up.id);
  chat.history(users[3], room, {}, {}, 10);
  uploads.expire(now_ms(), 100);
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
