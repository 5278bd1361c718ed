// storage/: implementations of chat::Store. sqlite/ is the embedded default; open_store.h
// picks one from the --db URL. Depends on chat/ (the interface) and the database library.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "chat/store.h"

namespace parley::storage {

struct SqliteOptions {
  std::string path;                    // file path, or ":memory:"
  std::size_t readers = 16;            // read connections (one per storage thread is enough)
  std::size_t group_commit_max = 256;  // jobs per transaction; 1 turns group commit off
  bool synchronous_full = true;        // fsync the WAL at every commit
  // Called by the writer after each commit with the number of jobs in it (metrics).
  std::function<void(std::size_t)> on_commit;
  // Storage faults (docs/decisions.md "Storage faults"): how long a write waits for a lock
  // held by another process before it fails; how often the writer probes while writes fail;
  // the interval of the summary log line.
  int busy_timeout_ms = 5000;
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds fault_log_interval{10000};
  std::function<void(bool healthy)> on_health;          // each health transition (metrics)
  std::function<void(std::size_t n)> on_failed;         // operations refused by a storage fault
  std::string vfs;                                      // SQLite VFS name; empty: the default
};

// chat::Store on SQLite in WAL mode. One writer thread owns the write connection and runs
// every queued write job of one moment inside one transaction (group commit), each job in
// its own SAVEPOINT; callers return only after that COMMIT. Reads use their own connections.
// Storage faults (SQLITE_FULL, READONLY, BUSY, IOERR, CANTOPEN, CORRUPT…, and the database
// file moved or deleted) throw Error(Unavailable); healthy() is false from a failed write
// until the writer's probe commits (a real one-page write, tried every probe_interval while
// unhealthy and at once after a client write commits; after a disk full it also wants 1 MiB
// free), so health comes back without client writes and does not flap on small writes that
// fit in what a failed commit left in the WAL.
class SqliteStore final : public chat::Store {
 public:
  explicit SqliteStore(SqliteOptions opts);  // opens, migrates; throws std::runtime_error
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void write(const std::function<void(chat::Tx&)>& fn) override;
  void read(const std::function<void(chat::Tx&)>& fn) override;
  // Whether writes reach the disk (no write failed since the last probe committed). Never blocks.
  bool healthy() override;
  const std::string& database_id() const override;

  // The schema version the code migrates to.
  static int schema_version();
  // Steps taken by full table scans since start (after migration); every query of the
  // store has an index for its access path, so this stays 0 (a test holds it to that).
  std::uint64_t full_scan_steps() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::storage
