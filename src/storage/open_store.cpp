#include "storage/open_store.h"

#include <stdexcept>

#include "storage/sqlite/sqlite_store.h"

namespace parley::storage {

std::string sqlite_path(const std::string& db_url) {
  if (db_url.rfind("sqlite:", 0) != 0 || db_url == "sqlite::memory:") return "";
  return db_url.substr(7);
}

std::unique_ptr<chat::Store> open_store(const StoreConfig& cfg) {
  if (cfg.db_url.rfind("postgres://", 0) == 0 || cfg.db_url.rfind("postgresql://", 0) == 0)
    throw std::runtime_error("PostgreSQL support is not built into this binary yet");
  SqliteOptions o;
  o.path = cfg.db_url == "sqlite::memory:" ? ":memory:" : sqlite_path(cfg.db_url);
  if (o.path.empty()) throw std::runtime_error("unsupported --db URL: " + cfg.db_url);
  o.readers = cfg.threads;
  o.group_commit_max = cfg.group_commit_max;
  o.on_commit = cfg.on_commit;
  o.busy_timeout_ms = cfg.busy_timeout_ms;
  o.on_health = cfg.on_health;
  o.on_failed = cfg.on_failed;
  return std::make_unique<SqliteStore>(std::move(o));
}

}  // namespace parley::storage
