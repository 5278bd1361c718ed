// RedisKv against a real redis-server of its own (skipped when none is installed): SET NX PX
// answers, expiry, and failing fast and recovering when Redis goes and comes back.
#include "bus/redis_kv.h"

#include <gtest/gtest.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace parley;
using namespace std::chrono_literals;
using Result = bus::RedisKv::SetResult;

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool redis_installed() { return ::access("/usr/bin/redis-server", X_OK) == 0; }

// A throwaway redis-server on a free port, stopped by the destructor.
struct RedisServer {
  int port = free_port();
  pid_t pid = -1;
  RedisServer() { start(); }
  ~RedisServer() { stop(); }
  void start() {
    pid_t parent = ::getpid();
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      std::string p = std::to_string(port);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 4 s
      if (redisContext* c = redisConnect("127.0.0.1", port); c && !c->err) {
        redisFree(c);
        return;
      } else if (c) {
        redisFree(c);
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "redis-server did not start on port " << port;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

bus::RedisKvOptions options(int port) {
  bus::RedisKvOptions o;
  o.port = port;
  o.prefix = "test:";
  return o;
}

}  // namespace

TEST(RedisKv, SetIfAbsentHoldsTheKeyForItsTtl) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  bus::RedisKv kv(options(redis.port));
  std::string problem;
  EXPECT_EQ(kv.set_if_absent("cd:1|sidebar", 300ms, &problem), Result::Set) << problem;
  EXPECT_EQ(kv.set_if_absent("cd:1|sidebar", 300ms, &problem), Result::Exists) << problem;
  EXPECT_EQ(kv.set_if_absent("cd:2|sidebar", 300ms, &problem), Result::Set) << problem;
  // The key is the prefixed one and it carries a TTL.
  redisContext* c = redisConnect("127.0.0.1", redis.port);
  ASSERT_TRUE(c && !c->err);
  auto* r = static_cast<redisReply*>(redisCommand(c, "PTTL test:cd:1|sidebar"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, REDIS_REPLY_INTEGER);
  EXPECT_GT(r->integer, 0);
  EXPECT_LE(r->integer, 300);
  freeReplyObject(r);
  redisFree(c);
  // Expired by Redis itself: free again (waiting well past the TTL).
  auto until = std::chrono::steady_clock::now() + 5s;
  Result again = Result::Exists;
  while (std::chrono::steady_clock::now() < until && (again = kv.set_if_absent("cd:1|sidebar", 300ms, &problem)) == Result::Exists)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(again, Result::Set) << problem;
}

TEST(RedisKv, OneKeyIsTakenOnceUnderConcurrentCallers) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  bus::RedisKv kv(options(redis.port));
  std::atomic<int> set{0}, exists{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::string p;
        switch (kv.set_if_absent("cd:k" + std::to_string(i), 60s, &p)) {
          case Result::Set: ++set; break;
          case Result::Exists: ++exists; break;
          case Result::Failed: ++failed; break;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(set.load(), 50);  // each key once, over at most 4 connections
  EXPECT_EQ(exists.load() + failed.load(), 350);
  EXPECT_EQ(failed.load(), 0);
}

TEST(RedisKv, FailsFastWhileRedisIsAwayAndWorksAgainOnceItIsBack) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  bus::RedisKv kv(options(redis.port));
  std::string problem;
  ASSERT_EQ(kv.set_if_absent("cd:a", 60s, &problem), Result::Set) << problem;  // an idle connection now
  redis.stop();
  problem.clear();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(kv.set_if_absent("cd:b", 60s, &problem), Result::Failed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);  // generous; bounded by the short timeouts
  EXPECT_NE(problem.find("redis 127.0.0.1:"), std::string::npos) << problem;
  EXPECT_EQ(kv.set_if_absent("cd:b", 60s, &problem), Result::Failed);
  redis.start();  // same port, empty
  EXPECT_EQ(kv.set_if_absent("cd:a", 60s, &problem), Result::Set) << problem;
  EXPECT_EQ(kv.set_if_absent("cd:a", 60s, &problem), Result::Exists) << problem;
}

TEST(RedisKv, AConnectionClosedByARestartedRedisIsReplacedWithoutAFailure) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  bus::RedisKv kv(options(redis.port));
  std::string problem;
  ASSERT_EQ(kv.set_if_absent("cd:a", 60s, &problem), Result::Set) << problem;
  redis.stop();
  redis.start();  // the pooled connection is dead; Redis is up
  EXPECT_EQ(kv.set_if_absent("cd:a", 60s, &problem), Result::Set) << problem;
}
