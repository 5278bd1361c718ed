// storage/postgres: chat::Store on PostgreSQL through libpq, for several instances sharing one
// database. Depends on chat/ (the interface) and libpq.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "chat/store.h"

namespace parley::storage {

struct PostgresOptions {
  std::string url;               // postgres://… or postgresql://… (any libpq connection URI)
  std::size_t connections = 16;  // the pool's bound: at most this many server connections
  // Called after each commit with the number of jobs in it (always 1 here; metrics).
  std::function<void(std::size_t)> on_commit;
  // Health (docs/decisions.md "Storage faults", "PostgreSQL"): how often the prober checks
  // the server, the interval of the fault summary log line, and the metrics hooks.
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds fault_log_interval{10000};
  std::function<void(bool healthy)> on_health;   // each health transition
  std::function<void(std::size_t n)> on_failed;  // operations refused by a fault
};

// chat::Store on PostgreSQL. Every write is one READ COMMITTED transaction on a pooled
// connection; lock_room_by_id takes the room row's lock (SELECT … FOR UPDATE), which
// serializes the writers of one room across instances while other rooms commit in parallel.
// Reads are REPEATABLE READ, READ ONLY transactions (one snapshot). Each connection runs in
// libpq pipeline mode: statements whose result the domain does not need (BEGIN, updates,
// upserts) are sent without waiting and ride along with the next statement that returns rows
// or with COMMIT, so they cost no round trip of their own (docs/decisions.md counts them).
// Serialization failures, deadlocks and unique violations of a concurrent writer retry the
// whole transaction, at most kMaxAttempts times; a lost or refused server is
// Error(ErrorKind::Unavailable) and the next call connects again. healthy() is a flag: false
// from a write refused by a fault, or a failed check of the prober thread (every
// probe_interval: the server answers and is not read-only), until a write or the prober's
// probe write commits.
class PostgresStore final : public chat::Store {
 public:
  static constexpr int kMaxAttempts = 5;  // tries of one transaction (retryable failures)

  explicit PostgresStore(PostgresOptions opts);  // connects, migrates; throws std::runtime_error
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  void write(const std::function<void(chat::Tx&)>& fn) override;
  void read(const std::function<void(chat::Tx&)>& fn) override;
  bool healthy() override;  // never blocks
  const std::string& database_id() const override;

  // The schema version the code migrates to.
  static int schema_version();
  // Round trips to the server since start (each wait for an answer counts once).
  std::uint64_t round_trips() const;
  // Transactions run again after a retryable failure since start.
  std::uint64_t retries() const;
  // Server connections open now (never above PostgresOptions::connections).
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::storage
