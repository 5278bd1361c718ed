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
  ASSERT_TRUE(b.ledger.here(9, 1000));  // b's own user, connected all along
  std::this_thread::sleep_for(300ms);   // every lease expires, b's too (it slept)
  TimeMs now = 5000;
  using Offline = std::vector<std::pair<Id, TimeMs>>;
  // b's own lease had expired: it undoes nobody yet (a may only be slow), counts its user 9
  // again (still online: nothing to announce), and settles 8's grace, past its slack.
  auto first = b.ledger.sweep(now);
  EXPECT_EQ(first.offline, (Offline{{8, 1000}}));
  EXPECT_TRUE(first.online.empty());
  EXPECT_TRUE(b.ledger.online(7));
  // a did not renew its lease within a sweep: undone, 7's grace starts now, on b; 9 stays.
  auto second = b.ledger.sweep(now + 1);
  EXPECT_TRUE(second.offline.empty());
  ASSERT_EQ(second.graces.size(), 1u);
  EXPECT_EQ(second.graces[0].first, 7);
  EXPECT_TRUE(b.ledger.online(7));
  EXPECT_TRUE(b.ledger.sweep(now + 200).offline.empty());  // b runs that grace: not the sweep before its slack
  EXPECT_TRUE(b.ledger.settle(7, second.graces[0].second));  // its end, on b
  EXPECT_FALSE(b.ledger.online(7));
  EXPECT_TRUE(b.ledger.online(9));
  EXPECT_TRUE(b.ledger.sweep(now + 1000).offline.empty());  // once
}

TEST(RedisPresence, AGraceOfAGoneInstanceThatNobodyRanIsSettledByASweep) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a", 200ms), b(redis.port, "b", 200ms), c(redis.port, "c", 200ms);
  ASSERT_TRUE(a.ledger.here(7, 1000));
  std::this_thread::sleep_for(300ms);
  b.ledger.sweep(5000);                               // b's own lease renewed
  EXPECT_EQ(b.ledger.sweep(5001).graces.size(), 1u);  // a undone; b "dies" before the grace ends
  EXPECT_TRUE(c.ledger.sweep(5200).offline.empty());  // not before the grace and its slack
  EXPECT_EQ(c.ledger.sweep(5201).offline, (std::vector<std::pair<Id, TimeMs>>{{7, 5001}}));
}

TEST(RedisPresence, ASweepLeavesAGraceToItsInstanceUntilTheSlack) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  ASSERT_TRUE(a.ledger.here(7, 1000));
  auto m = a.ledger.gone(7, 1000);
  ASSERT_TRUE(m);
  EXPECT_TRUE(b.ledger.sweep(1150).offline.empty());  // grace 100 + slack 100: not before 1200
  EXPECT_TRUE(a.ledger.settle(7, *m));
  EXPECT_TRUE(b.ledger.sweep(2000).offline.empty());  // settled: nothing left
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
  EXPECT_EQ(out.offline, (std::vector<std::pair<Id, TimeMs>>{{7, 2000}}));  // offline, last seen at the close
  EXPECT_TRUE(a.ledger.shared());
  EXPECT_FALSE(b.ledger.online(7));
  EXPECT_TRUE(a.ledger.sweep(4000).offline.empty());  // once
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

TEST(RedisPresence, AfterARedisRestartTheUsersConnectedHereAreCountedAgain) {
  if (!redis_installed()) GTEST_SKIP() << "no redis-server";
  RedisServer redis;
  Node a(redis.port, "a"), b(redis.port, "b");
  ASSERT_TRUE(a.ledger.here(7, 1000));
  redis.stop();
  redis.start();  // empty
  EXPECT_FALSE(b.ledger.online(7));
  auto sw = a.ledger.sweep(2000);  // a's lease is gone: 7 counted again, announced again
  EXPECT_EQ(sw.online, (std::vector<Id>{7}));
  EXPECT_TRUE(b.ledger.online(7));
  EXPECT_FALSE(b.ledger.gone(7, 2100));  // b never had 7: a still holds it
  EXPECT_TRUE(a.ledger.sweep(2200).online.empty());  // once
  auto m = a.ledger.gone(7, 2300);
  ASSERT_TRUE(m);
  EXPECT_TRUE(a.ledger.settle(7, *m));
}
