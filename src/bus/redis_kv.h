// Short key-value commands on the Redis of `--bus redis://HOST:PORT` for state every instance
// must share (the connect cooldown, presence). hiredis stays inside redis_kv.cpp; this header needs only
// the standard library.
//
// A small bounded pool of blocking connections with short timeouts: a caller (a storage-pool
// thread, never an IO thread) takes an idle connection, opens one if fewer than pool_size
// are open, or waits for one at most command_timeout. Any failure (cannot connect, timeout,
// connection error, error reply) is an answer of its own (Failed, with the reason) and costs
// at most connect_timeout + command_timeout; the connection is dropped and a later call opens
// a new one. What to do while Redis is away is the caller's decision (api::SharedCooldown).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::bus {

struct RedisKvOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string prefix = "parley:";  // of every key
  std::size_t pool_size = 4;       // connections open at most
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds command_timeout{100};  // also the longest wait for a free connection
};

class RedisKv {
 public:
  explicit RedisKv(RedisKvOptions opts);
  ~RedisKv();
  RedisKv(const RedisKv&) = delete;
  RedisKv& operator=(const RedisKv&) = delete;

  enum class SetResult { Set, Exists, Failed };
  // SET <prefix><key> 1 PX <ttl> NX: Set when the key was absent (it now expires after ttl),
  // Exists when it is held, Failed (reason in *problem) when Redis did not answer either.
  SetResult set_if_absent(std::string_view key, std::chrono::milliseconds ttl, std::string* problem);
  // EVAL script with keys and args (the script adds the prefix itself: where() and prefix()
  // name it). The reply's integers: one for an integer reply, each element of an array of
  // integers, none for nil. nullopt (reason in *problem) when Redis did not answer, answered an
  // error, or answered anything else.
  std::optional<std::vector<std::int64_t>> eval(std::string_view script, const std::vector<std::string>& keys,
                                                const std::vector<std::string>& args, std::string* problem);
  const std::string& prefix() const;
  std::string where() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::bus
