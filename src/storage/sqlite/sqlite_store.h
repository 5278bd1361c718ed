// storage/: implementations of chat::Store. sqlite/ is the embedded default; open_store.h
// picks one from the --db URL. Depends on chat/ (the interface) and the database library.
#pragma once
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
};

// chat::Store on SQLite in WAL mode. One writer thread owns the write connection and runs
// every queued write job of one moment inside one transaction (group commit), each job in
// its own SAVEPOINT; callers return only after that COMMIT. Reads use their own connections.
class SqliteStore final : public chat::Store {
 public:
  explicit SqliteStore(SqliteOptions opts);  // opens, migrates; throws std::runtime_error
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void write(const std::function<void(chat::Tx&)>& fn) override;
  void read(const std::function<void(chat::Tx&)>& fn) override;
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
