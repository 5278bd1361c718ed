// The store contract on every backend (SQLite and PostgreSQL): failure isolation, migrations
// (once, also when instances start together; refusal of a newer schema), and two instances
// writing into one room at once (gap-free unique seqs, one message per client_msg_id, times
// in commit order, one direct room per pair). PostgreSQL-only: round trips per send, the
// pool's bound, reconnection and the 503 mapping.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "chat/service.h"
#include "chat/uploads.h"
#include "common/error.h"
#include "storage/postgres/postgres_store.h"
#include "storage/sqlite/sqlite_store.h"
#include "storage/testing/test_database.h"

using namespace parley;
using storage::testing::TestDatabase;

namespace {

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    db = storage::testing::make_test_database(GetParam());
    if (!db) GTEST_SKIP() << "PARLEY_TEST_PG_URL is not set (scripts/with-postgres.sh sets it)";
  }
  int schema_version() const {
    return GetParam() == "postgres" ? storage::PostgresStore::schema_version()
                                    : storage::SqliteStore::schema_version();
  }
  std::unique_ptr<TestDatabase> db;
};

std::string backend_name(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(storage::testing::backends()), backend_name);

TEST(StoreSchema, BothBackendsHaveTheSameMigrationSteps) {
  EXPECT_EQ(storage::SqliteStore::schema_version(), storage::PostgresStore::schema_version());
}

TEST_P(StoreTest, AFailingJobRollsBackAloneAndOthersCommit) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t % 2) {
          try {
            store->write([&](chat::Tx& tx) {
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
  EXPECT_TRUE(store->healthy());
}

TEST_P(StoreTest, ReopenKeepsDataAndSchemaVersion) {
  Id a = 0;
  {
    auto store = db->open();
    chat::ChatService chat(*store);
    a = chat.create_user("alice", "h").id;
  }
  auto store = db->open();
  chat::ChatService chat(*store);
  EXPECT_EQ(chat.get_user(a).username, "alice");
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  EXPECT_EQ(db->query_int("SELECT count(*) FROM schema_version"), 1);
}

// Delivered (grey double ticks): the delivered watermark's moves by `delivered` frames, and
// the per-message time derived from them and the read moves, on both backends; the step that
// adds them migrates a database of the version before it.
TEST_P(StoreTest, DeliveredMovesGiveEachMessageTheFirstTimeTheWatermarkPassedIt) {
  {
    auto store = db->open();
    store->write([](chat::Tx& tx) {
      tx.insert_delivered_move(5, 7, 2, 1000);
      tx.insert_delivered_move(5, 7, 6, 2000);
      tx.insert_delivered_move(5, 7, 6, 3000);  // a repeated move keeps the first time
      tx.insert_delivered_move(5, 8, 9, 500);   // another user
      tx.insert_delivered_move(4, 7, 9, 400);   // another room
    });
    store->read([](chat::Tx& tx) {
      EXPECT_EQ(tx.first_delivered_move_at(5, 7, 1), 1000);
      EXPECT_EQ(tx.first_delivered_move_at(5, 7, 2), 1000);
      EXPECT_EQ(tx.first_delivered_move_at(5, 7, 3), 2000);
      EXPECT_EQ(tx.first_delivered_move_at(5, 7, 6), 2000);
      EXPECT_EQ(tx.first_delivered_move_at(5, 7, 7), std::nullopt);
      EXPECT_EQ(tx.first_delivered_move_at(5, 9, 1), std::nullopt);
    });
  }
  // Through the domain, after a reopen: members' watermarks and read-by-who's delivered_to.
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id c = chat.create_user("carol", "h").id;
  Id room = chat.create_group(a, "r", {b, c}).room.id;
  auto m1 = chat.send(a, room, "1", {}).message;
  auto m2 = chat.send(a, room, "2", {}).message;
  chat.mark_delivered(b, room, 1);
  chat.read_one(c, m2.id);  // a read implies delivered
  chat.mark_delivered(b, room, 99);
  store->read([&](chat::Tx& tx) {
    auto mb = tx.member(room, b);
    ASSERT_TRUE(mb);
    EXPECT_EQ(mb->delivered_seq, 2);  // clamped to last_seq
    EXPECT_EQ(mb->read_seq, 0);
    auto mc = tx.member(room, c);
    EXPECT_EQ(mc->delivered_seq, 2);
    EXPECT_EQ(tx.first_delivered_move_at(room, c, 1), std::nullopt);  // carol's is a read move
  });
  auto w1 = chat.read_by_who(a, m1.id);
  ASSERT_EQ(w1.delivered_to.size(), 2u);
  auto w2 = chat.read_by_who(a, m2.id);
  ASSERT_EQ(w2.delivered_to.size(), 2u);
  EXPECT_LE(w1.delivered_to[0].delivered_at, w2.delivered_to[0].delivered_at);  // bob: 1 before 2
  EXPECT_EQ(w1.delivered_to[1].delivered_at, w2.delivered_to[1].delivered_at);  // carol: one read
}

TEST_P(StoreTest, TheDeliveredStepMigratesADatabaseOfTheVersionBefore) {
  { auto store = db->open(); }
  // Back to version 2 (before the delivered step), the later steps undone too.
  db->exec("DROP TABLE message_attachments");
  db->exec("DROP TABLE uploads");
  db->exec("DROP TABLE delivered_moves");
  db->exec("DROP TABLE reactions");  // the steps after it run again too
  db->exec("ALTER TABLE users DROP COLUMN last_seen");
  db->exec("UPDATE schema_version SET version = 2");
  auto store = db->open();
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  store->write([](chat::Tx& tx) { tx.insert_delivered_move(1, 2, 3, 4); });
  EXPECT_EQ(db->query_int("SELECT count(*) FROM delivered_moves"), 1);
}

// Presence: who shares an active room with whom (a left member does not), and last_seen,
// null until set, kept across a reopen; the step that adds it migrates the version before.
TEST_P(StoreTest, PresenceCoMembersAndLastSeen) {
  Id a = 0, d = 0;
  {
    auto store = db->open();
    chat::ChatService chat(*store);
    a = chat.create_user("alice", "h").id;
    Id b = chat.create_user("bob", "h").id;
    Id c = chat.create_user("carol", "h").id;
    d = chat.create_user("dave", "h").id;
    Id r1 = chat.create_group(a, "r1", {b, c}).room.id;
    chat.create_group(a, "r2", {b}).room.id;  // bob twice: once in the list
    chat.create_direct(c, d);
    chat.remove_member(a, r1, c);  // carol left alice's rooms
    EXPECT_EQ(chat.co_member_ids(a, 100), (std::vector<Id>{b}));
    EXPECT_EQ(chat.co_member_ids(b, 100), (std::vector<Id>{a}));
    EXPECT_EQ(chat.co_member_ids(c, 100), (std::vector<Id>{d}));
    EXPECT_EQ(chat.co_member_ids(c, 0), (std::vector<Id>{}));
    store->read([&](chat::Tx& tx) {
      EXPECT_TRUE(tx.share_room(a, b));
      EXPECT_TRUE(tx.share_room(b, a));
      EXPECT_FALSE(tx.share_room(a, c));
      EXPECT_FALSE(tx.share_room(a, d));
      EXPECT_TRUE(tx.share_room(c, d));
    });
    EXPECT_EQ(chat.presence_of(a, a), std::nullopt);  // never closed a connection
    EXPECT_EQ(chat.presence_of(a, b), std::nullopt);
    chat.set_last_seen(b, 1234);
    EXPECT_EQ(chat.presence_of(a, b), 1234);
    try {
      chat.presence_of(a, c);
      ADD_FAILURE() << "no shared room: 403";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Forbidden);
    }
    try {
      chat.presence_of(a, 999999);
      ADD_FAILURE() << "unknown user: 404";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    }
    chat.set_last_seen(d, 99);
  }
  auto store = db->open();
  chat::ChatService chat(*store);
  EXPECT_EQ(chat.last_seen(d), 99);
  EXPECT_EQ(chat.last_seen(a), std::nullopt);
}

TEST_P(StoreTest, ThePresenceStepMigratesADatabaseOfTheVersionBefore) {
  { auto store = db->open(); }
  db->exec("DROP TABLE message_attachments");  // the steps after it run again too
  db->exec("DROP TABLE uploads");
  db->exec("ALTER TABLE users DROP COLUMN last_seen");
  db->exec("UPDATE schema_version SET version = 4");  // the presence step is the 5th
  auto store = db->open();
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  EXPECT_EQ(chat.last_seen(a), std::nullopt);
  chat.set_last_seen(a, 5);
  EXPECT_EQ(chat.last_seen(a), 5);
}

TEST_P(StoreTest, TheUploadsStepMigratesADatabaseOfTheVersionBefore) {
  { auto store = db->open(); }
  db->exec("DROP TABLE message_attachments");
  db->exec("DROP TABLE uploads");
  db->exec("UPDATE schema_version SET version = " + std::to_string(schema_version() - 1));
  auto store = db->open();
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  chat::UploadService uploads(*store, chat::UploadLimits{});
  auto u = uploads.create(a, "a.txt", "text/plain", 3, std::string(32, 'a'));
  EXPECT_EQ(db->query_int("SELECT count(*) FROM uploads"), 1);
  EXPECT_EQ(uploads.pending_for_put(a, u.id).size, 3);
}

TEST_P(StoreTest, RefusesADatabaseFromANewerVersion) {
  { auto store = db->open(); }
  db->exec("UPDATE schema_version SET version = 999");
  EXPECT_THROW(db->open(), std::runtime_error);
}

TEST_P(StoreTest, ADatabaseGetsARandomIdOnceAndKeepsIt) {
  std::string id;
  { id = db->open()->database_id(); }
  EXPECT_EQ(id.size(), 32u);  // 16 random bytes as hex
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(db->open()->database_id(), id);  // reopened, or another instance
  auto other = storage::testing::make_test_database(GetParam());
  EXPECT_NE(other->open()->database_id(), id);
}

// Each migration step creates its tables without IF NOT EXISTS: a second application would
// fail that instance's start. So every instance starting means the steps ran once.
TEST_P(StoreTest, InstancesStartingTogetherMigrateOnce) {
  constexpr int kInstances = 4;
  std::vector<std::unique_ptr<chat::Store>> stores(kInstances);
  std::vector<std::string> errors(kInstances);
  std::barrier start(kInstances);
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        stores[i] = db->open();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kInstances; ++i) {
    EXPECT_EQ(errors[i], "") << "instance " << i;
    EXPECT_NE(stores[i], nullptr);
  }
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  EXPECT_EQ(db->query_int("SELECT count(*) FROM schema_version"), 1);
  // And they work on the one schema.
  chat::ChatService a(*stores[0]), b(*stores[kInstances - 1]);
  Id u = a.create_user("alice", "h").id;
  EXPECT_EQ(b.get_user(u).username, "alice");
}

// Two instances (two stores on one database), four threads each, sending into one room at
// once; every client_msg_id is sent by one thread of each instance at about the same time,
// and a reader marks the room read meanwhile.
TEST_P(StoreTest, TwoInstancesSendingIntoOneRoomKeepSeqsGapFreeAndClientIdsIdempotent) {
  auto s1 = db->open();
  auto s2 = db->open();
  chat::ChatService c1(*s1), c2(*s2);
  Id alice = c1.create_user("alice", "h").id;
  Id bob = c1.create_user("bob", "h").id;
  Id room = c1.create_group(alice, "busy", {bob}).room.id;

  constexpr int kThreadsPerInstance = 4, kSends = 40;
  struct Sent {
    Id id;
    chat::Seq seq;
    bool created;
  };
  std::mutex mu;
  std::map<std::string, std::vector<Sent>> by_client_id;
  std::vector<Sent> plain;  // sends without a client_msg_id
  std::atomic<bool> sending{true};
  std::barrier start(2 * kThreadsPerInstance + 1);
  std::vector<std::thread> threads;
  for (int inst = 0; inst < 2; ++inst)
    for (int t = 0; t < kThreadsPerInstance; ++t)
      threads.emplace_back([&, inst, t] {
        chat::ChatService& chat = inst == 0 ? c1 : c2;
        Id sender = t % 2 ? bob : alice;
        start.arrive_and_wait();
        for (int i = 0; i < kSends; ++i) {
          bool keyed = i % 2 == 0;
          std::optional<std::string> cmid;
          if (keyed) cmid = "t" + std::to_string(t) + "-" + std::to_string(i);  // same in both instances
          auto r = chat.send(sender, room, "m", cmid);
          std::lock_guard g(mu);
          (keyed ? by_client_id[*cmid] : plain).push_back(Sent{r.message.id, r.message.seq, r.created});
        }
      });
  threads.emplace_back([&] {
    start.arrive_and_wait();
    while (sending) c2.mark_all_read(bob, room);
  });
  for (std::size_t i = 0; i + 1 < threads.size(); ++i) threads[i].join();
  sending = false;
  threads.back().join();

  // One message per client_msg_id: both instances got the same one, created exactly once.
  std::set<chat::Seq> seqs;
  for (auto& [cmid, sends] : by_client_id) {
    ASSERT_EQ(sends.size(), 2u) << cmid;
    EXPECT_EQ(sends[0].id, sends[1].id) << cmid;
    EXPECT_EQ(sends[0].seq, sends[1].seq) << cmid;
    EXPECT_EQ(int(sends[0].created) + int(sends[1].created), 1) << cmid;
    seqs.insert(sends[0].seq);
  }
  for (auto& s : plain) {
    EXPECT_TRUE(s.created);
    EXPECT_TRUE(seqs.insert(s.seq).second) << "seq " << s.seq << " given twice";
  }
  // Gap-free: exactly 1..N, and the room's last_seq is N.
  const std::size_t expected = by_client_id.size() + plain.size();
  EXPECT_EQ(expected, std::size_t(kThreadsPerInstance * kSends / 2 + 2 * kThreadsPerInstance * kSends / 2));
  ASSERT_EQ(seqs.size(), expected);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), chat::Seq(expected));
  EXPECT_EQ(c1.get_room(alice, room).room.last_seq, chat::Seq(expected));

  // Times in commit order: created_at never goes back along seq, and every read_at is at or
  // after the created_at of the message it covers.
  auto all = c2.messages_between(room, 0, chat::Seq(expected) + 1, int(expected));
  ASSERT_EQ(all.size(), expected);
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
    EXPECT_GE(all[i].created_at, all[i - 1].created_at) << "seq " << all[i].seq;
  }
  c1.mark_all_read(bob, room);
  for (std::size_t i = 0; i < all.size(); i += 7) {
    auto who = c1.read_by_who(all[i].sender_id, all[i].id);
    for (auto& r : who.read_by) EXPECT_GE(r.read_at, all[i].created_at) << "seq " << all[i].seq;
  }
}

// Two instances creating the direct room of one pair at once end with one room.
TEST_P(StoreTest, ConcurrentDirectRoomCreationMakesOneRoom) {
  auto s1 = db->open();
  auto s2 = db->open();
  chat::ChatService c1(*s1), c2(*s2);
  for (int pair = 0; pair < 10; ++pair) {
    Id a = c1.create_user("ann" + std::to_string(pair), "h").id;
    Id b = c1.create_user("ben" + std::to_string(pair), "h").id;
    std::barrier start(2);
    std::pair<chat::RoomView, bool> r1, r2;
    std::thread t1([&] {
      start.arrive_and_wait();
      r1 = c1.create_direct(a, b);
    });
    std::thread t2([&] {
      start.arrive_and_wait();
      r2 = c2.create_direct(b, a);
    });
    t1.join();
    t2.join();
    EXPECT_EQ(r1.first.room.id, r2.first.room.id);
    EXPECT_EQ(int(r1.second) + int(r2.second), 1);
    EXPECT_EQ(c1.list_rooms(a).size(), 1u);
  }
}

// ---- PostgreSQL only ----

namespace {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db = storage::testing::make_test_database("postgres");
    if (!db) GTEST_SKIP() << "PARLEY_TEST_PG_URL is not set (scripts/with-postgres.sh sets it)";
  }
  storage::PostgresStore& pg(chat::Store& s) { return dynamic_cast<storage::PostgresStore&>(s); }
  // Closes every server connection of the test database but the caller's.
  void terminate_connections() {
    db->query_int(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  }
  // Whether pred() holds within 5 s (the prober checks every second).
  static bool within_5s(const std::function<bool()>& pred) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  std::unique_ptr<TestDatabase> db;
};

}  // namespace

// docs/decisions.md counts them: BEGIN rides with the room lock, the updates with the next
// query or with COMMIT.
TEST_F(PostgresStoreTest, RoundTripsPerSend) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  chat.send(a, room, "warm", {});  // prepares the statements on the connection
  chat.send(a, room, "warm", std::string("k0"));
  auto before = pg(*store).round_trips();
  chat.send(a, room, "x", {});
  EXPECT_EQ(pg(*store).round_trips() - before, 5u);  // lock, member, insert, members, commit
  before = pg(*store).round_trips();
  chat.send(a, room, "y", std::string("k1"));
  EXPECT_EQ(pg(*store).round_trips() - before, 6u);  // + the client_msg_id look-up
  before = pg(*store).round_trips();
  auto again = chat.send(a, room, "y", std::string("k1"));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(pg(*store).round_trips() - before, 6u);  // lock, member, look-up, its reactions, its attachments, commit
}

TEST_F(PostgresStoreTest, ThePoolNeverOpensMoreThanItsBound) {
  auto store = db->open();  // 8 connections
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  std::vector<Id> rooms;
  for (int i = 0; i < 4; ++i) rooms.push_back(chat.create_group(a, "r" + std::to_string(i), {}).room.id);
  std::atomic<std::size_t> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 24; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        chat.send(a, rooms[t % 4], "x", {});
        std::size_t n = pg(*store).open_connections();
        std::size_t m = most.load();
        while (n > m && !most.compare_exchange_weak(m, n)) {
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 8u);
  EXPECT_GE(most.load(), 2u);  // the threads did share it
  EXPECT_LE(db->query_int("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name = 'parley'"),
            8);
  for (Id r : rooms) EXPECT_EQ(chat.get_room(a, r).room.last_seq, 6 * 15);
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheServerClosedItsConnections) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  chat.send(a, room, "before", {});
  terminate_connections();
  // The pooled connection is dead; the write notices before COMMIT and runs on a new one.
  EXPECT_EQ(chat.send(a, room, "after", {}).message.seq, 2);
  EXPECT_GE(pg(*store).retries(), 1u);
  terminate_connections();
  EXPECT_EQ(chat.history(a, room, {}, {}, 10).messages.size(), 2u);
  EXPECT_TRUE(store->healthy());
}

TEST_F(PostgresStoreTest, AnUnreachableDatabaseIsUnavailableUntilItComesBack) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  chat.send(a, room, "one", {});
  ASSERT_TRUE(store->healthy());
  // The server refuses new connections to the database and closes the open ones.
  storage::testing::postgres_admin_exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS false");
  storage::testing::postgres_admin_exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db->name() + "'");
  try {
    chat.send(a, room, "lost", {});
    ADD_FAILURE() << "a send without a database succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unavailable);
    EXPECT_EQ(e.code(), "unavailable");
  }
  try {
    chat.history(a, room, {}, {}, 10);
    ADD_FAILURE() << "a read without a database succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unavailable);
  }
  EXPECT_FALSE(store->healthy());  // at once: a write was refused
  EXPECT_EQ(pg(*store).open_connections(), 0u);
  // Back: the prober finds it and the store connects again by itself, with no client write.
  storage::testing::postgres_admin_exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS true");
  EXPECT_TRUE(within_5s([&] { return store->healthy(); }));
  EXPECT_EQ(chat.send(a, room, "two", {}).message.seq, 2);
}

// With no traffic at all, the prober notices the server going away and coming back.
TEST_F(PostgresStoreTest, AnIdleStoreNoticesTheServerGoingAndComing) {
  auto store = db->open();
  ASSERT_TRUE(store->healthy());
  storage::testing::postgres_admin_exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS false");
  storage::testing::postgres_admin_exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db->name() + "'");
  EXPECT_TRUE(within_5s([&] { return !store->healthy(); }));
  storage::testing::postgres_admin_exec("ALTER DATABASE " + db->name() + " ALLOW_CONNECTIONS true");
  EXPECT_TRUE(within_5s([&] { return store->healthy(); }));
}

// A statement error that is not the server's absence is a bug: it stays a plain failure
// (500), rolls back, and leaves the connection usable.
TEST_F(PostgresStoreTest, AnSqlErrorRollsBackAndTheConnectionStaysUsable) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  db->exec("ALTER TABLE messages ADD CONSTRAINT short CHECK (length(content) < 10)");
  try {
    chat.send(a, room, "far too long for the check", {});
    ADD_FAILURE() << "the check did not fire";
  } catch (const Error& e) {
    ADD_FAILURE() << "mapped to a domain error: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("short"), std::string::npos) << e.what();
  }
  // The deferred member/room updates of the failed send were rolled back with it.
  EXPECT_EQ(chat.get_room(a, room).room.last_seq, 0);
  EXPECT_EQ(chat.send(a, room, "ok", {}).message.seq, 1);
  EXPECT_EQ(pg(*store).retries(), 0u);
}

// The server failing writes for its own reasons (here a trigger raising disk_full, 53100, on
// every write the store makes) is 503 and not ready; once writes commit again, ready.
TEST_F(PostgresStoreTest, WritesFailingForTheServersReasonsMakeItUnreadyUntilAWriteCommits) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  ASSERT_TRUE(store->healthy());
  db->exec(
      "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$");
  db->exec("CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION full_disk()");
  db->exec("CREATE TRIGGER disk_full BEFORE UPDATE ON database_identity FOR EACH ROW EXECUTE FUNCTION full_disk()");
  EXPECT_TRUE(store->healthy());  // nothing failed yet
  try {
    chat.send(a, room, "x", {});
    ADD_FAILURE() << "the send succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unavailable);
  }
  EXPECT_FALSE(store->healthy());  // at once
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(store->healthy());  // the prober's probe write fails too
  EXPECT_EQ(chat.get_room(a, room).room.last_seq, 0);  // reads still work
  db->exec("DROP TRIGGER disk_full ON messages");
  db->exec("DROP TRIGGER disk_full ON database_identity");
  EXPECT_TRUE(within_5s([&] { return store->healthy(); }));  // the probe committed, no client write
  EXPECT_EQ(chat.send(a, room, "y", {}).message.seq, 1);
}

// Attachments: an upload's life (pending, finished once), the pending bound, expiry, links
// to messages read back in order with one query, and who shares an upload.
TEST_P(StoreTest, UploadsAttachToMessagesAndAreSharedWithTheRoomsMembers) {
  auto store = db->open();
  chat::ChatService chat(*store);
  chat::UploadService uploads(*store, chat::UploadLimits{1000, 3, 60000});
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id c = chat.create_user("carol", "h").id;
  Id room = chat.create_group(a, "r", {b}).room.id;
  auto key = [](int i) { return std::string(31, '0') + std::to_string(i); };
  auto u1 = uploads.create(a, "one.txt", "text/plain", 10, key(1));
  auto u2 = uploads.create(a, "two.bin", "x", 20, key(2));
  EXPECT_EQ(u2.content_type, "application/octet-stream");
  EXPECT_THROW(uploads.create(a, "big", "text/plain", 1001, key(3)), Error);
  uploads.create(a, "three", "text/plain", 5, key(4));
  try {
    uploads.create(a, "four", "text/plain", 5, key(5));  // a 4th pending one: over the bound of 3
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::RateLimited);
  }
  EXPECT_THROW(uploads.pending_for_put(b, u1.id), Error);  // another's: 404
  uploads.complete(a, u1.id, std::string(64, 'a'));
  uploads.complete(a, u2.id, std::string(64, 'b'));
  try {
    uploads.complete(a, u1.id, std::string(64, 'c'));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Conflict);
  }
  // Not shared yet: the uploader only.
  EXPECT_EQ(uploads.for_download(a, u1.id).sha256, std::string(64, 'a'));
  EXPECT_THROW(uploads.for_download(b, u1.id), Error);
  EXPECT_THROW(chat.send(b, room, "not mine", {}, {}, {u1.id}), Error);
  EXPECT_THROW(chat.send(a, room, "twice", {}, {}, {u1.id, u1.id}), Error);
  auto sent = chat.send(a, room, "files", {}, {}, {u2.id, u1.id}).message;
  ASSERT_EQ(sent.attachments.size(), 2u);
  EXPECT_EQ(sent.attachments[0].id, u2.id);
  chat.send(a, room, "plain", {});
  auto page = chat.history(b, room, std::nullopt, std::nullopt, 50);
  ASSERT_EQ(page.messages.size(), 2u);
  ASSERT_EQ(page.messages[0].attachments.size(), 2u);
  EXPECT_EQ(page.messages[0].attachments[0].id, u2.id);
  EXPECT_EQ(page.messages[0].attachments[1].id, u1.id);
  EXPECT_EQ(page.messages[0].attachments[1].filename, "one.txt");
  EXPECT_TRUE(page.messages[1].attachments.empty());
  EXPECT_EQ(chat.get_message(b, sent.id).attachments.size(), 2u);
  EXPECT_EQ(uploads.for_download(b, u1.id).id, u1.id);  // a member now
  EXPECT_THROW(uploads.for_download(c, u1.id), Error);  // never a member
  chat.remove_member(a, room, b);
  EXPECT_THROW(uploads.for_download(b, u1.id), Error);  // removed
  // Expiry: only unfinished ones older than the TTL.
  EXPECT_TRUE(uploads.expire(now_ms(), 100).empty());
  auto gone = uploads.expire(now_ms() + 60001, 100);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].file_key, key(4));
  EXPECT_THROW(uploads.for_download(a, gone[0].id), Error);
  EXPECT_EQ(uploads.for_download(a, u1.id).id, u1.id);  // finished ones stay
}

// Reactions: the rows behind them on both backends. A removal keeps the row (inactive) with
// its stamp; one query returns a page's reactions, of the asked messages only, each emoji's
// users in the order of their add.
TEST_P(StoreTest, ReactionRowsAddRemoveAndLoadForAPageInOneQuery) {
  auto store = db->open();
  chat::ChatService chat(*store);
  Id a = chat.create_user("alice", "h").id, b = chat.create_user("bob", "h").id;
  Id r = chat.create_group(a, "r", {b}).room.id, other = chat.create_group(a, "o", {}).room.id;
  std::vector<Id> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(chat.send(a, r, "m" + std::to_string(i), {}).message.id);
  Id elsewhere = chat.send(a, other, "x", {}).message.id;
  store->write([&](chat::Tx& tx) {
    EXPECT_FALSE(tx.reaction(r, ids[0], "x", b));
    tx.put_reaction(r, ids[0], "x", b, true, 20);
    tx.put_reaction(r, ids[0], "x", a, true, 10);  // earlier: listed first
    tx.put_reaction(r, ids[0], "y", a, true, 30);
    tx.put_reaction(r, ids[1], "x", a, true, 40);
    tx.put_reaction(r, ids[2], "z", a, true, 50);  // outside the asked set below
    tx.put_reaction(r, ids[3], "x", b, true, 60);
    tx.put_reaction(r, ids[3], "x", b, false, 61);  // removed
    tx.put_reaction(other, elsewhere, "x", a, true, 70);
  });
  std::map<Id, chat::Reactions> got;
  store->read([&](chat::Tx& tx) {
    auto row = tx.reaction(r, ids[3], "x", b);
    ASSERT_TRUE(row);
    EXPECT_FALSE(row->active);
    EXPECT_EQ(row->at, 61);
    got = tx.reactions_of(r, {ids[0], ids[1], ids[3]});
  });
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got[ids[0]], (chat::Reactions{{"x", {a, b}}, {"y", {a}}}));
  EXPECT_EQ(got[ids[1]], (chat::Reactions{{"x", {a}}}));
  EXPECT_FALSE(got.count(ids[2]));
  EXPECT_FALSE(got.count(ids[3]));
  // Added again: the same row, active, with its new stamp.
  store->write([&](chat::Tx& tx) { tx.put_reaction(r, ids[3], "x", b, true, 62); });
  store->read([&](chat::Tx& tx) {
    EXPECT_EQ(tx.reactions_of(r, {ids[3]})[ids[3]], (chat::Reactions{{"x", {b}}}));
    EXPECT_TRUE(tx.reactions_of(r, {}).empty());
  });
  EXPECT_EQ(db->query_int("SELECT count(*) FROM reactions"), 7);
}

TEST_P(StoreTest, TheReactionsStepMigratesADatabaseOfTheVersionBefore) {
  { auto store = db->open(); }
  db->exec("DROP TABLE reactions");
  db->exec("DROP TABLE message_attachments");  // the steps after it run again too
  db->exec("DROP TABLE uploads");
  db->exec("ALTER TABLE users DROP COLUMN last_seen");
  db->exec("UPDATE schema_version SET version = 3");
  auto store = db->open();
  EXPECT_EQ(db->query_int("SELECT version FROM schema_version"), schema_version());
  store->write([](chat::Tx& tx) { tx.put_reaction(1, 2, "x", 3, true, 4); });
  EXPECT_EQ(db->query_int("SELECT count(*) FROM reactions"), 1);
}
