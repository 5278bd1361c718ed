// Storage faults on a real file (docs/decisions.md "Storage faults"): every fault of the
// class — disk full, I/O errors, a failed fsync, read-only, a lock held by another
// connection, the file moved or deleted — refuses with Error(Unavailable), flips healthy()
// until a write commits, recovers by itself through the writer's probe, logs one line per
// interval, and leaves a database that passes integrity_check and holds every acknowledged
// message. Faults are injected by the "faulty" VFS (fault_vfs_test.h).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "chat/service.h"
#include "common/error.h"
#include "storage/log_capture_test.h"
#include "storage/sqlite/fault_vfs_test.h"
#include "storage/sqlite/sqlite_store.h"

using namespace parley;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    dir_ = fs::temp_directory_path() / ("parley-faults-" + std::to_string(::getpid()) + "-" + std::to_string(n_++));
    fs::create_directories(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  std::string path(const char* name = "p.db") const { return (dir_ / name).string(); }

 private:
  static inline int n_ = 0;
  fs::path dir_;
};

struct Counters {
  std::atomic<int> downs{0}, ups{0};
  std::atomic<std::size_t> failed{0};
};

storage::SqliteOptions faulty_options(const std::string& path, Counters* c = nullptr) {
  storage::SqliteOptions o;
  o.path = path;
  o.readers = 4;
  o.synchronous_full = true;  // every commit syncs the WAL: the fsync fault needs it
  o.vfs = faultvfs::install();
  o.busy_timeout_ms = 200;
  o.probe_interval = 50ms;
  o.fault_log_interval = 10s;
  if (c) {
    o.on_health = [c](bool ok) { ok ? ++c->ups : ++c->downs; };
    o.on_failed = [c](std::size_t n) { c->failed += n; };
  }
  return o;
}

// Clears the injected faults when a test ends, whatever happens.
struct FaultGuard {
  FaultGuard() { faultvfs::control().clear(); }
  ~FaultGuard() { faultvfs::control().clear(); }
};

// Runs fn, which must throw Error(Unavailable) with code "unavailable".
template <class F>
void expect_unavailable(F fn, const char* what) {
  try {
    fn();
    ADD_FAILURE() << what << ": did not fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unavailable) << what << ": " << e.what();
    EXPECT_EQ(e.code(), "unavailable") << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": a plain exception (a 500): " << e.what();
  }
}

// Waits up to `limit` for healthy() to become `want`; returns how long it took.
std::chrono::milliseconds wait_health(storage::SqliteStore& s, bool want, std::chrono::milliseconds limit = 3000ms) {
  auto start = std::chrono::steady_clock::now();
  while (s.healthy() != want && std::chrono::steady_clock::now() - start < limit) std::this_thread::sleep_for(5ms);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

// The database as a fresh connection (default VFS) sees it after the store closed.
struct Verdict {
  std::string integrity;
  std::vector<std::pair<std::int64_t, std::string>> messages;  // (seq, content) of one room
};
Verdict inspect(const std::string& path, Id room) {
  Verdict v;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr), SQLITE_OK);
  while (sqlite3_step(s) == SQLITE_ROW) v.integrity += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT seq, content FROM messages WHERE room_id=? ORDER BY seq", -1, &s, nullptr),
            SQLITE_OK);
  sqlite3_bind_int64(s, 1, room);
  while (sqlite3_step(s) == SQLITE_ROW)
    v.messages.emplace_back(sqlite3_column_int64(s, 0), reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

// A user, a room and `n` acknowledged messages; then tests break storage and look again.
struct Fixture {
  Id user = 0, room = 0;
  std::vector<std::pair<std::int64_t, std::string>> acked;
  void seed(chat::ChatService& chat, int n) {
    user = chat.create_user("alice", "h").id;
    room = chat.create_group(user, "r", {}).room.id;
    for (int i = 0; i < n; ++i) send(chat, "before " + std::to_string(i));
  }
  chat::SendResult send(chat::ChatService& chat, const std::string& content,
                        std::optional<std::string> cmid = std::nullopt) {
    auto r = chat.send(user, room, content, cmid);
    if (r.created) acked.emplace_back(r.message.seq, content);
    return r;
  }
  void expect_all_there(const std::string& path) {
    auto v = inspect(path, room);
    EXPECT_EQ(v.integrity, "ok");
    EXPECT_EQ(v.messages, acked);  // every acknowledged message, seq 1..N, nothing else
    for (std::size_t i = 0; i < v.messages.size(); ++i) EXPECT_EQ(v.messages[i].first, static_cast<chat::Seq>(i + 1));
  }
};

struct FaultCase {
  const char* name;
  int write_rc, sync_rc;
  int target;
};

class EveryFault : public ::testing::TestWithParam<FaultCase> {};

}  // namespace

// The reproduction: a full disk made every send a 500 while /readyz said ready.
TEST(StorageFaults, DiskFullRefusesWithUnavailableFlipsHealthAndRecoversWithoutClientWrites) {
  FaultGuard guard;
  TempDir dir;
  Counters counters;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path(), &counters));
    chat::ChatService chat(store);
    f.seed(chat, 5);
    EXPECT_TRUE(store.healthy());

    faultvfs::control().write_rc = SQLITE_FULL;
    expect_unavailable([&] { f.send(chat, "during 1"); }, "send");
    expect_unavailable([&] { chat.create_user("bob", "h"); }, "register");
    expect_unavailable([&] { chat.create_group(f.user, "other", {}); }, "create room");
    EXPECT_FALSE(store.healthy());
    EXPECT_EQ(counters.downs, 1);
    EXPECT_EQ(counters.failed, 3u);
    // Reads do not write: they still answer.
    EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 5u);
    // Without client writes, the probe keeps trying (and failing) while the disk is full.
    int before = faultvfs::control().writes_failed;
    std::this_thread::sleep_for(300ms);
    EXPECT_GT(faultvfs::control().writes_failed, before) << "the writer probes while unhealthy";
    EXPECT_FALSE(store.healthy());

    faultvfs::control().write_rc = 0;  // the disk has room again
    auto took = wait_health(store, true);
    EXPECT_TRUE(store.healthy()) << "no recovery without client writes";
    EXPECT_LT(took, 1000ms);
    EXPECT_EQ(counters.ups, 1);
    EXPECT_EQ(f.send(chat, "after").message.seq, 6);  // the refused sends took no seq
  }
  f.expect_all_there(dir.path());
}

TEST_P(EveryFault, IsUnavailableNeverInternalAndHealsByItself) {
  const FaultCase& c = GetParam();
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 3);
    faultvfs::control().target = c.target;
    faultvfs::control().write_rc = c.write_rc;
    faultvfs::control().sync_rc = c.sync_rc;
    expect_unavailable([&] { f.send(chat, "refused"); }, c.name);
    expect_unavailable([&] { chat.create_user("bob", "h"); }, c.name);
    EXPECT_FALSE(store.healthy()) << c.name;
    faultvfs::control().clear();
    wait_health(store, true);
    EXPECT_TRUE(store.healthy()) << c.name;
    f.send(chat, "after");
    EXPECT_EQ(chat.create_user("bob", "h").username, "bob");
  }
  f.expect_all_there(dir.path());
}

INSTANTIATE_TEST_SUITE_P(
    StorageFaults, EveryFault,
    ::testing::Values(FaultCase{"disk_full_wal", SQLITE_FULL, 0, faultvfs::kWal},
                      FaultCase{"write_ioerr_wal", SQLITE_IOERR_WRITE, 0, faultvfs::kWal},
                      FaultCase{"write_ioerr_any", SQLITE_IOERR_WRITE, 0, faultvfs::kAll},
                      FaultCase{"readonly_write", SQLITE_READONLY, 0, faultvfs::kAll},
                      FaultCase{"fsync_wal", 0, SQLITE_IOERR_FSYNC, faultvfs::kWal},
                      FaultCase{"fsync_any", 0, SQLITE_IOERR_FSYNC, faultvfs::kAll}),
    [](const ::testing::TestParamInfo<FaultCase>& i) { return std::string(i.param.name); });

// A commit whose fsync failed is not visible: the send was refused, and a retry with the
// same client_msg_id stores it once (201), then answers with that one (200).
TEST(StorageFaults, FsyncFailureAtCommitStoresNothingAndARetryWithTheSameClientIdStoresOnce) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 4);
    faultvfs::control().target = faultvfs::kWal;
    faultvfs::control().sync_rc = SQLITE_IOERR_FSYNC;
    expect_unavailable([&] { f.send(chat, "retried", std::string("cmid-1")); }, "send");
    EXPECT_GT(faultvfs::control().syncs_failed, 0);
    faultvfs::control().clear();
    EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 4u) << "the failed commit is not visible";
    auto first = f.send(chat, "retried", std::string("cmid-1"));
    EXPECT_TRUE(first.created);
    EXPECT_EQ(first.message.seq, 5);
    auto again = f.send(chat, "retried", std::string("cmid-1"));
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.message.id, first.message.id);
  }
  f.expect_all_there(dir.path());
}

// The one case where a refused send may exist after all: its fsync failed, but the bytes
// reached the WAL, and the process died before any further write. A copy of the files taken
// at that moment is what a restart would find; whatever WAL recovery makes of it, a retry
// with the same client_msg_id leaves exactly one such message, and seqs stay gap-free.
TEST(StorageFaults, AfterACrashFollowingAFailedFsyncARetryWithTheSameClientIdStoresExactlyOnce) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  storage::SqliteStore store(faulty_options(dir.path()));
  chat::ChatService chat(store);
  f.seed(chat, 2);
  faultvfs::control().target = faultvfs::kWal;
  faultvfs::control().sync_rc = SQLITE_IOERR_FSYNC;
  expect_unavailable([&] { f.send(chat, "maybe", std::string("k")); }, "send");
  faultvfs::control().clear();
  // The crash image: the database and its WAL as they are now (no -shm: a restart rebuilds it).
  fs::copy_file(dir.path(), dir.path("crash.db"));
  fs::copy_file(dir.path() + "-wal", dir.path("crash.db") + "-wal");
  {
    storage::SqliteStore restarted(faulty_options(dir.path("crash.db")));
    chat::ChatService chat2(restarted);
    auto before = chat2.history(f.user, f.room, {}, {}, 50).messages;
    bool resurrected = before.size() == 3;
    ASSERT_TRUE(before.size() == 2 || resurrected) << before.size();
    std::printf("# after the crash the refused send was %s\n", resurrected ? "found (WAL recovery)" : "absent");
    auto retry = chat2.send(f.user, f.room, "maybe", std::string("k"));
    EXPECT_EQ(retry.created, !resurrected);
    EXPECT_EQ(retry.message.seq, 3);
    EXPECT_EQ(retry.message.content, "maybe");
    EXPECT_FALSE(chat2.send(f.user, f.room, "maybe", std::string("k")).created);
    f.acked.emplace_back(3, "maybe");
  }
  f.expect_all_there(dir.path("crash.db"));
}

// Once another write committed after the failed fsync, its frames took the refused one's
// place in the WAL: no crash brings the refused send back.
TEST(StorageFaults, AWriteCommittedAfterAFailedFsyncBuriesTheRefusedSend) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  storage::SqliteStore store(faulty_options(dir.path()));
  chat::ChatService chat(store);
  f.seed(chat, 2);
  faultvfs::control().target = faultvfs::kWal;
  faultvfs::control().sync_rc = SQLITE_IOERR_FSYNC;
  expect_unavailable([&] { f.send(chat, "refused", std::string("k")); }, "send");
  faultvfs::control().clear();
  EXPECT_EQ(f.send(chat, "next").message.seq, 3);
  fs::copy_file(dir.path(), dir.path("crash.db"));
  fs::copy_file(dir.path() + "-wal", dir.path("crash.db") + "-wal");
  f.expect_all_there(dir.path("crash.db"));  // 1, 2, "next": the refused send is not there
}

// A fault inside a batch of many concurrent sends: every send is either acknowledged and
// stored, or refused with Unavailable and absent; seqs stay gap-free.
TEST(StorageFaults, ConcurrentSendsAcrossAFaultAreAcknowledgedExactlyWhenStored) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  std::mutex mu;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 1);
    std::atomic<bool> stop{false};
    std::atomic<int> refused{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string content = "t" + std::to_string(t) + " m" + std::to_string(i);
          try {
            auto r = chat.send(f.user, f.room, content, std::nullopt);
            std::lock_guard g(mu);
            f.acked.emplace_back(r.message.seq, content);
          } catch (const Error& e) {
            e.kind() == ErrorKind::Unavailable ? ++refused : ++other;
          } catch (...) {
            ++other;
          }
        }
      });
    for (int round = 0; round < 3; ++round) {
      std::this_thread::sleep_for(60ms);
      faultvfs::control().write_rc = round % 2 ? SQLITE_IOERR_WRITE : SQLITE_FULL;
      std::this_thread::sleep_for(60ms);
      faultvfs::control().write_rc = 0;
    }
    std::this_thread::sleep_for(60ms);
    stop = true;
    for (auto& t : threads) t.join();
    EXPECT_GT(refused, 0);
    EXPECT_EQ(other, 0);
  }
  std::sort(f.acked.begin(), f.acked.end());
  f.expect_all_there(dir.path());
}

TEST(StorageFaults, ALockHeldByAnotherConnectionIsUnavailableUntilReleased) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 2);
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(dir.path().c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    auto start = std::chrono::steady_clock::now();
    expect_unavailable([&] { f.send(chat, "blocked"); }, "send");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms) << "waited for the busy timeout";
    EXPECT_FALSE(store.healthy());
    EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 2u) << "WAL readers are not blocked";
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(store.healthy()) << "the probe does not get the lock either";
    ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(other);
    wait_health(store, true);
    EXPECT_TRUE(store.healthy());
    f.send(chat, "after");
  }
  f.expect_all_there(dir.path());
}

// WAL mode alone would go on committing into a renamed file (a restart would not open it):
// the store refuses until the same file is back at its path.
TEST(StorageFaults, AMovedDatabaseFileRefusesWritesUntilItIsBack) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 3);
    fs::rename(dir.path(), dir.path("moved.db"));
    expect_unavailable([&] { f.send(chat, "into the moved file"); }, "send");
    EXPECT_FALSE(store.healthy());
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(store.healthy());
    fs::rename(dir.path("moved.db"), dir.path());
    wait_health(store, true);
    EXPECT_TRUE(store.healthy());
    f.send(chat, "after");
  }
  f.expect_all_there(dir.path());
}

// Readers are opened on demand: one opened while the file is away must not create an empty
// database at the path (and then answer from it), nor open a file put in its place.
TEST(StorageFaults, AReaderOpenedWhileTheFileIsAwayNeverCreatesOrOpensAnotherDatabase) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  {
    storage::SqliteStore store(faulty_options(dir.path()));
    chat::ChatService chat(store);
    f.seed(chat, 3);  // writes only: no reader is open yet
    fs::rename(dir.path(), dir.path("moved.db"));
    expect_unavailable([&] { chat.history(f.user, f.room, {}, {}, 50); }, "history while moved");
    EXPECT_FALSE(fs::exists(dir.path())) << "a reader created a database at the path";
    // Another file in its place (a copy: same bytes, another inode) is not the store's file.
    fs::copy_file(dir.path("moved.db"), dir.path("copy.db"));
    fs::rename(dir.path("copy.db"), dir.path());
    expect_unavailable([&] { chat.history(f.user, f.room, {}, {}, 50); }, "history from a replacement");
    expect_unavailable([&] { f.send(chat, "into the replacement"); }, "send into a replacement");
    fs::rename(dir.path("moved.db"), dir.path());  // the store's own file is back
    EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 3u);
    wait_health(store, true);
    EXPECT_TRUE(store.healthy());
    f.send(chat, "after");
  }
  f.expect_all_there(dir.path());
}

TEST(StorageFaults, ADeletedDatabaseFileNeverAcknowledgesAWrite) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  storage::SqliteStore store(faulty_options(dir.path()));
  chat::ChatService chat(store);
  f.seed(chat, 1);
  // A hard link keeps the file to bring it back; the path itself is gone.
  fs::create_hard_link(dir.path(), dir.path("keep.db"));
  fs::remove(dir.path());
  for (int i = 0; i < 5; ++i) expect_unavailable([&] { f.send(chat, "lost " + std::to_string(i)); }, "send");
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(store.healthy()) << "a deleted file stays unavailable";
  fs::create_hard_link(dir.path("keep.db"), dir.path());  // the same file is back
  wait_health(store, true);
  EXPECT_TRUE(store.healthy());
  EXPECT_EQ(f.send(chat, "after").message.seq, 2);
}

TEST(StorageFaults, AReadThatFailsIsUnavailableAndDoesNotDecideHealth) {
  FaultGuard guard;
  TempDir dir;
  Fixture f;
  storage::SqliteStore store(faulty_options(dir.path()));
  chat::ChatService chat(store);
  f.seed(chat, 3);
  EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 3u);  // a reader is open and warm
  f.send(chat, "a fresh commit: readers must read pages again");
  faultvfs::control().read_rc = SQLITE_IOERR_READ;
  expect_unavailable([&] { chat.history(f.user, f.room, {}, {}, 50); }, "history");
  EXPECT_GT(faultvfs::control().reads_failed, 0);
  EXPECT_TRUE(store.healthy());
  faultvfs::control().clear();
  EXPECT_EQ(chat.history(f.user, f.room, {}, {}, 50).messages.size(), 4u);
}

// Many refused requests, a few log lines: the first failure at once, one summary per
// interval, one line on recovery.
TEST(StorageFaults, LogsOneLinePerIntervalNotOnePerRequest) {
  FaultGuard guard;
  TempDir dir;
  LogCapture log;
  Counters counters;
  Fixture f;
  auto opts = faulty_options(dir.path(), &counters);
  opts.fault_log_interval = 400ms;
  storage::SqliteStore store(opts);
  chat::ChatService chat(store);
  f.seed(chat, 1);
  faultvfs::control().write_rc = SQLITE_FULL;
  auto start = std::chrono::steady_clock::now();
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          chat.send(f.user, f.room, "x", std::nullopt);
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Unavailable) ++refused;
        }
        std::this_thread::sleep_for(5ms);
      }
    });
  for (auto& t : threads) t.join();
  std::this_thread::sleep_for(450ms);  // one more interval: the last summary is due
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(refused, 200);
  EXPECT_EQ(counters.failed, 200u);
  auto lines = log.storage_lines();
  int errors = 0, summaries = 0;
  std::size_t summarized = 0;
  for (auto& l : lines) {
    if (l.level == spdlog::level::err) ++errors;
    if (l.level == spdlog::level::warn) ++summaries;
    if (l.level == spdlog::level::err || l.level == spdlog::level::warn) {
      auto at = l.text.find(" operations refused");
      ASSERT_NE(at, std::string::npos) << l.text;
      auto from = l.text.rfind(' ', at - 1) + 1;
      summarized += std::stoul(l.text.substr(from, at - from));
    }
  }
  EXPECT_EQ(errors, 1);
  EXPECT_GE(summaries, 1);
  EXPECT_LE(summaries, static_cast<int>(elapsed / 0.4) + 1) << "elapsed " << elapsed << " s";
  EXPECT_EQ(summarized, 200u) << "every refused operation is counted in exactly one line";
  faultvfs::control().write_rc = 0;
  wait_health(store, true);
  ASSERT_TRUE(store.healthy());
  std::this_thread::sleep_for(100ms);
  auto after = log.storage_lines();
  ASSERT_EQ(after.size(), lines.size() + 1);
  EXPECT_EQ(after.back().level, spdlog::level::info);
  EXPECT_NE(after.back().text.find("recovered"), std::string::npos);
  EXPECT_EQ(counters.downs, 1);
  EXPECT_EQ(counters.ups, 1);
}
