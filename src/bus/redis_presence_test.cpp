// RedisPresenceLedger against a real redis-server of its own (skipped when none is installed):
// two instances sharing one user's count, a reconnect in the grace, an instance whose lease
// expired, a grace its instance never settled, and the fallback while Redis is away.
#include "bus/redis_presence.h"

#include <gtest/gtest.h>

#include <thread>

#include "bus/redis_test_server.h"

using namespace parley;
using namespace std::chrono_literals;

namespace {

using bus::testing::redis_installed;
using bus::testing::RedisServer;

struct Node {
  bus::RedisKv kv;
  bus::RedisPresenceLedger ledger;
  Node(int port, const std::string& id, std::chrono::milliseconds lease = 6000ms)
      : kv(options(port)), ledger(kv, presence(id, lease)) {}
  static bus::RedisKvOptions options(int port) {
    bus::RedisKvOptions o;
    o.port = port;
    o.prefix = "test:";
    return o;
  }
  static bus::RedisPresenceOptions presence(const std::string& id, std::chrono::milliseconds lease) {
    bus::RedisPresenceOptions o;
    o.instance = id;
    o.lease = lease;
    o.grace = 100ms;
    o.slack = 100ms;
    return o;
  }
};

}  // namespace

TEST(RedisPresence, OnlineWhileAnyInstanceHoldsAConnection) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  EXPECT_TRUE(a.ledger.here(7, 1000));
  EXPECT_FALSE(b.ledger.here(7, 1001));  // announced online already
  EXPECT_FALSE(a.ledger.gone(7, 1002));  // b still holds one: no grace
  EXPECT_TRUE(b.ledger.online(7));
  auto m = b.ledger.gone(7, 1003);
  ASSERT_TRUE(m);
  EXPECT_TRUE(a.ledger.online(7));  // in the grace
  EXPECT_TRUE(b.ledger.settle(7, *m));
  EXPECT_FALSE(a.ledger.online(7));
  EXPECT_FALSE(a.ledger.settle(7, *m));  // once
  EXPECT_TRUE(a.ledger.shared());
}

TEST(RedisPresence, AReconnectOnAnotherInstanceInTheGraceCancelsIt) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  ASSERT_TRUE(a.ledger.here(7, 1000));
  auto m = a.ledger.gone(7, 1001);
  ASSERT_TRUE(m);
  EXPECT_FALSE(b.ledger.here(7, 1002));
  EXPECT_FALSE(a.ledger.settle(7, *m));  // a's grace does nothing
  EXPECT_TRUE(b.ledger.online(7));
  auto m2 = b.ledger.gone(7, 1003);
  ASSERT_TRUE(m2);
  EXPECT_FALSE(a.ledger.settle(7, *m));  // still not the older one
  EXPECT_TRUE(b.ledger.settle(7, *m2));
}

TEST(RedisPresence, AnInstanceWhoseLeaseExpiredIsUndoneByASweep) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a", 200ms), b(redis.port, "b", 200ms);
  ASSERT_TRUE(a.ledger.here(7, 1000));  // a "dies" now: it sweeps no more
  ASSERT_TRUE(b.ledger.here(8, 1000));
  ASSERT_TRUE(b.ledger.gone(8, 1000));  // and b "forgets" to settle 8's grace
  std::this_thread::sleep_for(300ms);   // a's lease expires
  TimeMs now = 5000;
  // 8's grace is past its slack: settled by the sweep. a undone: 7's grace starts now.
  EXPECT_EQ(b.ledger.sweep(now), (std::vector<std::pair<Id, TimeMs>>{{8, 1000}}));
  EXPECT_TRUE(b.ledger.online(7));
  EXPECT_TRUE(b.ledger.sweep(now + 99).empty());
  EXPECT_EQ(b.ledger.sweep(now + 100), (std::vector<std::pair<Id, TimeMs>>{{7, now}}));  // the grace passed
  EXPECT_FALSE(b.ledger.online(7));
  EXPECT_TRUE(b.ledger.sweep(now + 1000).empty());  // once
}

TEST(RedisPresence, ASweepLeavesAGraceToItsInstanceUntilTheSlack) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  ASSERT_TRUE(a.ledger.here(7, 1000));
  auto m = a.ledger.gone(7, 1000);
  ASSERT_TRUE(m);
  EXPECT_TRUE(b.ledger.sweep(1150).empty());  // grace 100 + slack 100: not before 1200
  EXPECT_TRUE(a.ledger.settle(7, *m));
  EXPECT_TRUE(b.ledger.sweep(2000).empty());  // settled: nothing left
}

TEST(RedisPresence, WhileRedisIsAwayTheInstanceDecidesAlone) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  auto redis = std::make_unique<RedisServer>();
  Node a(redis->port, "a");
  redis.reset();
  EXPECT_TRUE(a.ledger.here(7, 1000));
  EXPECT_FALSE(a.ledger.shared());
  EXPECT_TRUE(a.ledger.online(7));
  auto m = a.ledger.gone(7, 1001);
  ASSERT_TRUE(m);
  EXPECT_TRUE(a.ledger.settle(7, *m));
  EXPECT_FALSE(a.ledger.online(7));
}

TEST(RedisPresence, ALastCloseWhileRedisWasAwayIsToldToItByTheNextSweep) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  ASSERT_TRUE(a.ledger.here(7, 1000));
  redis.stop();
  EXPECT_FALSE(a.ledger.gone(7, 2000));  // Redis away: nothing to settle here
  EXPECT_FALSE(a.ledger.shared());
  redis.start();  // empty: what it knew is lost too
  auto out = a.ledger.sweep(3000);
  EXPECT_EQ(out, (std::vector<std::pair<Id, TimeMs>>{{7, 2000}}));  // offline, last seen at the close
  EXPECT_TRUE(a.ledger.shared());
  EXPECT_FALSE(b.ledger.online(7));
  EXPECT_TRUE(a.ledger.sweep(4000).empty());  // once
}

TEST(RedisPresence, AConnectionOpenedWhileRedisWasAwayEndsInTheInstancesOwnLedger) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a");
  redis.stop();
  EXPECT_TRUE(a.ledger.here(7, 1000));  // decided here
  redis.start();
  auto m = a.ledger.gone(7, 2000);
  ASSERT_TRUE(m);
  EXPECT_TRUE(a.ledger.settle(7, *m));  // offline from the ledger that said online
  EXPECT_FALSE(a.ledger.online(7));
}
