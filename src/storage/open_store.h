#pragma once
#include <functional>
#include <memory>
#include <string>

#include "chat/store.h"

namespace parley::storage {

struct StoreConfig {
  std::string db_url;  // sqlite:PATH | sqlite::memory:
  std::size_t threads = 16;
  std::size_t group_commit_max = 256;
  std::function<void(std::size_t)> on_commit;
  int busy_timeout_ms = 5000;                    // a write waits this long for another process's lock
  std::function<void(bool healthy)> on_health;   // storage health transitions (metrics)
  std::function<void(std::size_t n)> on_failed;  // operations refused by a storage fault (metrics)
};

// Opens the store named by the URL (and migrates it). Throws std::runtime_error.
std::unique_ptr<chat::Store> open_store(const StoreConfig& cfg);

// The SQLite file path of a sqlite: URL ("" for memory or another scheme).
std::string sqlite_path(const std::string& db_url);

}  // namespace parley::storage
