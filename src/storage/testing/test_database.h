// Throwaway databases for the store tests, one per test, on either backend: a SQLite file in
// a temporary directory, or a fresh database on the PostgreSQL server named by
// PARLEY_TEST_PG_URL (scripts/with-postgres.sh starts one; CTest does it as a fixture).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chat/store.h"

namespace parley::storage::testing {

class TestDatabase {
 public:
  virtual ~TestDatabase() = default;
  // A new store on this database: two calls are two instances sharing it.
  virtual std::unique_ptr<chat::Store> open() = 0;
  // Raw SQL on the database, beside the stores (to corrupt or inspect it).
  virtual void exec(const std::string& sql) = 0;
  virtual std::int64_t query_int(const std::string& sql) = 0;
  virtual std::string backend() const = 0;
  // The database's name (PostgreSQL) or file path (SQLite).
  virtual std::string name() const = 0;
};

// The backends every store test runs on.
inline std::vector<std::string> backends() { return {"sqlite", "postgres"}; }

// The PostgreSQL server for the tests ("" when PARLEY_TEST_PG_URL is not set).
std::string postgres_url();

// A fresh database of the backend ("sqlite" or "postgres"); nullptr for "postgres" without
// PARLEY_TEST_PG_URL (the caller skips). Throws when the server is named but does not answer.
std::unique_ptr<TestDatabase> make_test_database(const std::string& backend);

// Runs sql on the maintenance database of PARLEY_TEST_PG_URL; returns the first column of
// the first row, or 0.
std::int64_t postgres_admin_exec(const std::string& sql);

// The URL of another database on the same server as url.
std::string with_database(const std::string& url, const std::string& name);

}  // namespace parley::storage::testing
