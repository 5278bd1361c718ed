#include "bus/redis_kv.h"

#include <hiredis.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "bus/hiredis_util.h"

namespace parley::bus {

namespace {

using hiredis::Ctx;
using hiredis::Reply;
using hiredis::to_tv;

}  // namespace

struct RedisKv::Impl {
  explicit Impl(RedisKvOptions o) : opts(std::move(o)) {
    if (opts.pool_size == 0) opts.pool_size = 1;
  }
  RedisKvOptions opts;
  std::mutex mu;
  std::condition_variable freed;
  std::vector<Ctx> idle;
  std::size_t open = 0;  // idle and in use

  std::string where() const { return "redis " + opts.host + ":" + std::to_string(opts.port); }

  // An idle connection (reused = true), a new one, or none (*problem says why).
  Ctx acquire(bool& reused, std::string* problem) {
    std::unique_lock lk(mu);
    auto deadline = std::chrono::steady_clock::now() + opts.command_timeout;
    for (;;) {
      if (!idle.empty()) {
        Ctx c = std::move(idle.back());
        idle.pop_back();
        reused = true;
        return c;
      }
      if (open < opts.pool_size) break;
      if (freed.wait_until(lk, deadline) == std::cv_status::timeout && idle.empty() && open >= opts.pool_size) {
        if (problem) *problem = where() + ": all " + std::to_string(opts.pool_size) + " connections busy";
        return nullptr;
      }
    }
    ++open;
    lk.unlock();
    reused = false;
    Ctx c = connect(problem);
    if (!c) release(nullptr);
    return c;
  }

  Ctx connect(std::string* problem) {
    Ctx c(redisConnectWithTimeout(opts.host.c_str(), opts.port, to_tv(opts.connect_timeout)));
    if (!c || c->err) {
      if (problem) *problem = where() + ": " + (c ? c->errstr : "cannot allocate a Redis context");
      return nullptr;
    }
    redisSetTimeout(c.get(), to_tv(opts.command_timeout));
    redisEnableKeepAlive(c.get());
    return c;
  }

  hiredis::Reply command(int argc, const char** argv, const std::size_t* lens, std::string* problem);

  // Gives a connection back (nullptr: it was dropped).
  void release(Ctx c) {
    {
      std::lock_guard g(mu);
      if (c)
        idle.push_back(std::move(c));
      else
        --open;
    }
    freed.notify_one();
  }
};

RedisKv::RedisKv(RedisKvOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
RedisKv::~RedisKv() = default;

std::string RedisKv::where() const { return impl_->where(); }

const std::string& RedisKv::prefix() const { return impl_->opts.prefix; }

// One command with a retry on a fresh connection: a connection that sat idle may have been
// closed by a Redis that restarted since. nullptr (reason in *problem) when no answer came.
Reply RedisKv::Impl::command(int argc, const char** argv, const std::size_t* lens, std::string* problem) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false;
    Ctx c = acquire(reused, problem);
    if (!c) return nullptr;
    Reply r(static_cast<redisReply*>(redisCommandArgv(c.get(), argc, argv, lens)));
    if (!r) {
      if (problem) *problem = where() + ": " + (c->err ? c->errstr : "no answer");
      // Closed under it (EOF, reset): worth the fresh connection; a timeout is not.
      bool closed = c->err == REDIS_ERR_EOF ||
                    (c->err == REDIS_ERR_IO && std::strcmp(c->errstr, std::strerror(EAGAIN)) != 0);
      release(nullptr);
      if (reused && closed) continue;
      return nullptr;
    }
    release(std::move(c));  // the link is fine, whatever Redis answered
    return r;
  }
  return nullptr;
}

RedisKv::SetResult RedisKv::set_if_absent(std::string_view key, std::chrono::milliseconds ttl, std::string* problem) {
  std::string full = impl_->opts.prefix + std::string(key);
  std::string px = std::to_string(std::max<long long>(1, ttl.count()));
  const char* argv[] = {"SET", full.c_str(), "1", "PX", px.c_str(), "NX"};
  std::size_t lens[] = {3, full.size(), 1, 2, px.size(), 2};
  Reply r = impl_->command(6, argv, lens, problem);
  if (!r) return SetResult::Failed;
  if (r->type == REDIS_REPLY_STATUS) return SetResult::Set;
  if (r->type == REDIS_REPLY_NIL) return SetResult::Exists;
  if (problem)  // Redis refused (OOM, READONLY…)
    *problem = impl_->where() + ": " +
               (r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string("unexpected reply to SET"));
  return SetResult::Failed;
}

std::optional<std::vector<std::int64_t>> RedisKv::eval(std::string_view script, const std::vector<std::string>& keys,
                                                       const std::vector<std::string>& args, std::string* problem) {
  std::string nkeys = std::to_string(keys.size());
  std::vector<const char*> argv{"EVAL", script.data(), nkeys.c_str()};
  std::vector<std::size_t> lens{4, script.size(), nkeys.size()};
  for (const auto* v : {&keys, &args})
    for (const auto& a : *v) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
  Reply r = impl_->command(static_cast<int>(argv.size()), argv.data(), lens.data(), problem);
  if (!r) return std::nullopt;
  std::vector<std::int64_t> out;
  if (r->type == REDIS_REPLY_INTEGER) {
    out.push_back(r->integer);
    return out;
  }
  if (r->type == REDIS_REPLY_NIL) return out;
  if (r->type == REDIS_REPLY_ARRAY) {
    bool ints = true;
    for (std::size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_INTEGER) ints = false;
      else out.push_back(r->element[i]->integer);
    }
    if (ints) return out;
  }
  if (problem)
    *problem = impl_->where() + ": " +
               (r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string("unexpected reply to EVAL"));
  return std::nullopt;
}

}  // namespace parley::bus
