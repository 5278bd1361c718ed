#include "storage/testing/test_database.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "storage/postgres/postgres_store.h"
#include "storage/sqlite/sqlite_store.h"

namespace parley::storage::testing {
namespace {

std::atomic<int> counter{0};

class SqliteDatabase final : public TestDatabase {
 public:
  SqliteDatabase() {
    dir_ = std::filesystem::temp_directory_path() /
           ("parley-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
  }
  ~SqliteDatabase() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<chat::Store> open() override {
    SqliteOptions o;
    o.path = (dir_ / "p.db").string();
    o.readers = 4;
    o.synchronous_full = false;  // the tests check logic, not fsync
    return std::make_unique<SqliteStore>(std::move(o));
  }
  void exec(const std::string& sql) override {
    with_db([&](sqlite3* db) {
      char* err = nullptr;
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        throw std::runtime_error("sqlite: " + msg);
      }
    });
  }
  std::int64_t query_int(const std::string& sql) override {
    std::int64_t v = 0;
    with_db([&](sqlite3* db) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_finalize(s);
        throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
      }
      v = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    });
    return v;
  }
  std::string backend() const override { return "sqlite"; }
  std::string name() const override { return (dir_ / "p.db").string(); }

 private:
  template <class F>
  void with_db(F f) {
    sqlite3* db = nullptr;
    if (sqlite3_open((dir_ / "p.db").c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      throw std::runtime_error("cannot open the test database");
    }
    sqlite3_busy_timeout(db, 10000);
    try {
      f(db);
    } catch (...) {
      sqlite3_close(db);
      throw;
    }
    sqlite3_close(db);
  }
  std::filesystem::path dir_;
};

// Runs sql on url; returns the first column of the first row (0 when there is none).
std::int64_t pg_exec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot connect to the test PostgreSQL: " + msg);
  }
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  PGresult* r = PQexec(c, sql.c_str());
  auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    throw std::runtime_error("postgres: " + msg + " in: " + sql);
  }
  std::int64_t v = 0;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) v = std::atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return v;
}

class PostgresDatabase final : public TestDatabase {
 public:
  explicit PostgresDatabase(std::string admin_url) : admin_(std::move(admin_url)) {
    name_ = "parley_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    pg_exec(admin_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    pg_exec(admin_, "CREATE DATABASE " + name_);
    url_ = with_database(admin_, name_);
  }
  ~PostgresDatabase() override {
    try {
      pg_exec(admin_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  std::unique_ptr<chat::Store> open() override {
    PostgresOptions o;
    o.url = url_;
    o.connections = 8;
    return std::make_unique<PostgresStore>(std::move(o));
  }
  void exec(const std::string& sql) override { pg_exec(url_, sql); }
  std::int64_t query_int(const std::string& sql) override { return pg_exec(url_, sql); }
  std::string backend() const override { return "postgres"; }
  std::string name() const override { return name_; }

 private:
  std::string admin_, name_, url_;
};

}  // namespace

std::string postgres_url() {
  const char* u = std::getenv("PARLEY_TEST_PG_URL");
  return u ? u : "";
}

std::int64_t postgres_admin_exec(const std::string& sql) { return pg_exec(postgres_url(), sql); }

std::string with_database(const std::string& url, const std::string& name) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::runtime_error("not a URL: " + url);
  auto slash = url.find('/', scheme + 3);
  auto query = url.find('?', scheme + 3);
  if (slash == std::string::npos || (query != std::string::npos && slash > query)) {
    // No path: insert one before the query.
    std::size_t at = query == std::string::npos ? url.size() : query;
    return url.substr(0, at) + "/" + name + url.substr(at);
  }
  std::size_t end = query == std::string::npos ? url.size() : query;
  return url.substr(0, slash + 1) + name + url.substr(end);
}

std::unique_ptr<TestDatabase> make_test_database(const std::string& backend) {
  if (backend == "sqlite") return std::make_unique<SqliteDatabase>();
  if (backend == "postgres") {
    std::string url = postgres_url();
    if (url.empty()) return nullptr;
    return std::make_unique<PostgresDatabase>(url);
  }
  throw std::invalid_argument("unknown backend " + backend);
}

}  // namespace parley::storage::testing
