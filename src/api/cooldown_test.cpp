// The connect cooldown's memory: the local table, and the shared one (a fake shared store and
// a fake clock) with its fallback to the local table while the store is away.
#include "api/cooldown.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace parley;
using namespace std::chrono_literals;
using api::Claim;
using api::LocalCooldown;
using api::SharedCooldown;
using Clock = std::chrono::steady_clock;

TEST(LocalCooldown, CountsFromTheLastAcceptedConnect) {
  LocalCooldown cd(100);
  auto t = Clock::time_point{} + 1h;
  EXPECT_TRUE(cd.pass_at("k", 500ms, t));
  EXPECT_FALSE(cd.pass_at("k", 500ms, t + 300ms));
  EXPECT_FALSE(cd.pass_at("k", 500ms, t + 499ms));  // the refusal at +300 did not restart the clock
  EXPECT_TRUE(cd.pass_at("k", 500ms, t + 500ms));
  EXPECT_FALSE(cd.pass_at("k", 500ms, t + 900ms));  // the accept at +500 did
  EXPECT_TRUE(cd.pass_at("other", 500ms, t + 900ms));
}

TEST(LocalCooldown, WouldPassChangesNothingAndRecordRestartsTheClock) {
  LocalCooldown cd(100);
  auto t = Clock::time_point{} + 1h;
  EXPECT_TRUE(cd.would_pass("k", 500ms, t));
  EXPECT_TRUE(cd.would_pass("k", 500ms, t));
  EXPECT_EQ(cd.size(), 0u);
  cd.record("k", t);
  EXPECT_FALSE(cd.would_pass("k", 500ms, t + 100ms));
  cd.record("k", t + 400ms);
  EXPECT_FALSE(cd.would_pass("k", 500ms, t + 800ms));
  EXPECT_TRUE(cd.would_pass("k", 500ms, t + 900ms));
}

TEST(LocalCooldown, IsBounded) {
  LocalCooldown cd(2);
  auto t = Clock::time_point{} + 1h;
  EXPECT_TRUE(cd.pass_at("a", 500ms, t));
  EXPECT_TRUE(cd.pass_at("b", 500ms, t));
  EXPECT_TRUE(cd.pass_at("c", 500ms, t));  // evicts a
  EXPECT_EQ(cd.size(), 2u);
  EXPECT_TRUE(cd.pass_at("a", 500ms, t + 1ms));
  EXPECT_FALSE(cd.pass_at("a", 500ms, t + 2ms));
}

namespace {

// A shared store kept in memory with the semantics of SET NX PX, which can be made unavailable.
struct FakeShared {
  Clock::time_point now = Clock::time_point{} + 1h;
  std::map<std::string, Clock::time_point> expires;
  bool available = true;
  int calls = 0;
  std::vector<std::string> keys;

  Claim claim(const std::string& key, std::chrono::milliseconds ttl, std::string* problem) {
    ++calls;
    keys.push_back(key);
    if (!available) {
      *problem = "connection refused";
      return Claim::Unavailable;
    }
    auto it = expires.find(key);
    if (it != expires.end() && it->second > now) return Claim::Refused;
    expires[key] = now + ttl;
    return Claim::Passed;
  }
};

struct Instance {
  SharedCooldown cd;
  Instance(FakeShared& s, SharedCooldown::Options o = {})
      : cd([&s](const std::string& k, std::chrono::milliseconds ttl, std::string* p) { return s.claim(k, ttl, p); },
           std::move(o), [&s] { return s.now; }) {}
};

}  // namespace

TEST(SharedCooldown, AConnectAcceptedOnOneInstanceIsRefusedOnAnother) {
  FakeShared redis;
  Instance a(redis), b(redis);
  EXPECT_TRUE(a.cd.pass("7|sidebar", 500ms));
  redis.now += 100ms;
  EXPECT_FALSE(b.cd.pass("7|sidebar", 500ms));
  EXPECT_TRUE(b.cd.pass("7|room|3", 500ms));  // another key
  redis.now += 400ms;                          // 500 ms after the accept on A
  EXPECT_TRUE(b.cd.pass("7|sidebar", 500ms));
  redis.now += 200ms;
  EXPECT_FALSE(a.cd.pass("7|sidebar", 500ms));  // counts from B's accept now
  auto sa = a.cd.stats(), sb = b.cd.stats();
  EXPECT_TRUE(sa.up);
  EXPECT_EQ(sa.shared_passed, 1u);
  EXPECT_EQ(sa.shared_refused, 1u);
  EXPECT_EQ(sb.shared_passed, 2u);
  EXPECT_EQ(sb.shared_refused, 1u);
}

TEST(SharedCooldown, AQuickReconnectToTheSameInstanceIsRefusedWithoutARoundTrip) {
  FakeShared redis;
  Instance a(redis);
  EXPECT_TRUE(a.cd.pass("k", 500ms));
  EXPECT_EQ(redis.calls, 1);
  redis.now += 10ms;
  EXPECT_FALSE(a.cd.pass("k", 500ms));
  EXPECT_FALSE(a.cd.pass("k", 500ms));
  EXPECT_EQ(redis.calls, 1);
  EXPECT_EQ(a.cd.stats().local_refused, 2u);
}

TEST(SharedCooldown, WhileTheStoreIsAwayEachInstanceKeepsItsOwnCooldown) {
  FakeShared redis;
  Instance a(redis), b(redis);
  redis.available = false;
  EXPECT_TRUE(a.cd.pass("k", 500ms));  // not refused for the outage
  auto s = a.cd.stats();
  EXPECT_FALSE(s.up);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.outages, 1u);
  EXPECT_EQ(s.fallback_passed, 1u);
  redis.now += 50ms;
  EXPECT_FALSE(a.cd.pass("k", 500ms));  // the same instance still refuses a quick reconnect
  EXPECT_TRUE(b.cd.pass("k", 500ms));   // another instance does not know of it
  redis.now += 500ms;
  EXPECT_TRUE(a.cd.pass("k", 500ms));  // and the local cooldown runs out as it should
  EXPECT_EQ(a.cd.stats().outages, 1u);
}

TEST(SharedCooldown, TheStoreIsTriedAgainAfterABackoffAndUsedAgainOnceItAnswers) {
  FakeShared redis;
  SharedCooldown::Options o;
  o.backoff_min = 100ms;
  o.backoff_max = 400ms;
  Instance a(redis, o);
  redis.available = false;
  EXPECT_TRUE(a.cd.pass("k1", 500ms));
  EXPECT_EQ(redis.calls, 1);
  redis.now += 50ms;  // within the backoff: decided locally without asking
  EXPECT_TRUE(a.cd.pass("k2", 500ms));
  EXPECT_EQ(redis.calls, 1);
  redis.now += 60ms;  // 110 ms: one probe, which fails; the next wait is 200 ms
  EXPECT_TRUE(a.cd.pass("k3", 500ms));
  EXPECT_EQ(redis.calls, 2);
  redis.now += 150ms;
  EXPECT_TRUE(a.cd.pass("k4", 500ms));
  EXPECT_EQ(redis.calls, 2);
  redis.now += 60ms;
  EXPECT_TRUE(a.cd.pass("k5", 500ms));
  EXPECT_EQ(redis.calls, 3);
  for (int i = 0; i < 5; ++i) {  // capped at backoff_max
    redis.now += 401ms;
    EXPECT_TRUE(a.cd.pass("x" + std::to_string(i), 500ms));
  }
  EXPECT_EQ(redis.calls, 8);
  EXPECT_EQ(a.cd.stats().outages, 1u);  // one outage, however many probes failed

  redis.available = true;
  redis.now += 401ms;
  EXPECT_TRUE(a.cd.pass("k6", 500ms));  // the probe succeeds: shared again
  EXPECT_TRUE(a.cd.stats().up);
  EXPECT_EQ(redis.expires.count("k6"), 1u);
  Instance b(redis);
  EXPECT_FALSE(b.cd.pass("k6", 500ms));  // global again
  EXPECT_TRUE(a.cd.pass("k7", 500ms));   // no backoff once up
  EXPECT_EQ(redis.calls, 11);
}

TEST(SharedCooldown, ConnectsAcceptedDuringTheOutageStillCountOnTheirInstanceAfterIt) {
  FakeShared redis;
  SharedCooldown::Options o;
  o.backoff_min = 10ms;
  Instance a(redis, o);
  redis.available = false;
  EXPECT_TRUE(a.cd.pass("k", 500ms));
  redis.available = true;
  redis.now += 100ms;
  EXPECT_FALSE(a.cd.pass("k", 500ms));  // the local table refuses before Redis is asked
  EXPECT_EQ(redis.calls, 1);
}

TEST(SharedCooldown, ARefusalByTheStoreDoesNotRestartTheClock) {
  FakeShared redis;
  Instance a(redis), b(redis);
  EXPECT_TRUE(a.cd.pass("k", 500ms));
  redis.now += 400ms;
  EXPECT_FALSE(b.cd.pass("k", 500ms));
  redis.now += 100ms;  // 500 ms after A's accept, 100 ms after B's refusal
  EXPECT_TRUE(b.cd.pass("k", 500ms));
}

TEST(SharedCooldown, AClaimThatThrowsCountsAsUnavailableAndTheStoreIsStillProbedLater) {
  Clock::time_point now = Clock::time_point{} + 1h;
  int calls = 0;
  bool fail = true;
  SharedCooldown cd(
      [&](const std::string&, std::chrono::milliseconds, std::string*) {
        ++calls;
        if (fail) throw std::runtime_error("boom");
        return Claim::Passed;
      },
      SharedCooldown::Options{}, [&] { return now; });
  EXPECT_TRUE(cd.pass("a", 500ms));
  EXPECT_FALSE(cd.stats().up);
  fail = false;
  now += 150ms;  // past the first backoff (100 ms)
  EXPECT_TRUE(cd.pass("b", 500ms));
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(cd.stats().up);
}
