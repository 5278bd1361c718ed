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

#include "bus/redis_test_server.h"

using namespace parley;
using namespace std::chrono_literals;
using Result = bus::RedisKv::SetResult;

namespace {

using bus::testing::RedisServer;
using bus::testing::redis_installed;

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
