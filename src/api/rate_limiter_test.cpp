#include "api/rate_limiter.h"

#include <gtest/gtest.h>

using parley::api::RateLimiter;
using namespace std::chrono_literals;

TEST(RateLimiter, BurstThenRefusesWithRetryAfter) {
  RateLimiter l(1, 3, 100);
  auto t = RateLimiter::Clock::now();
  EXPECT_EQ(l.acquire("a", t), 0);
  EXPECT_EQ(l.acquire("a", t), 0);
  EXPECT_EQ(l.acquire("a", t), 0);
  EXPECT_EQ(l.acquire("a", t), 1);
  EXPECT_EQ(l.acquire("b", t), 0);       // per key
  EXPECT_EQ(l.acquire("a", t + 1s), 0);  // refilled
}

TEST(RateLimiter, KeysAreBounded) {
  RateLimiter l(1, 1, 2);
  auto t = RateLimiter::Clock::now();
  l.acquire("a", t);
  l.acquire("b", t);
  l.acquire("c", t);
  EXPECT_EQ(l.size(), 2u);
}

TEST(RateLimiter, ZeroRateIsOff) {
  RateLimiter l(0, 1, 2);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(l.acquire("a"), 0);
}

TEST(RateLimiter, RetryAfterRoundsUpToWholeSeconds) {
  RateLimiter l(0.25, 1, 10);  // one request every four seconds
  auto t = RateLimiter::Clock::now();
  EXPECT_EQ(l.acquire("a", t), 0);
  EXPECT_EQ(l.acquire("a", t), 4);
  EXPECT_EQ(l.acquire("a", t + std::chrono::milliseconds(2500)), 2);  // 1.5 s left → 2
  EXPECT_EQ(l.acquire("a", t + 4s), 0);
}

TEST(RateLimiter, TheLeastRecentlyUsedKeyIsEvictedAndComesBackFull) {
  RateLimiter l(1, 1, 2);
  auto t = RateLimiter::Clock::now();
  EXPECT_EQ(l.acquire("a", t), 0);
  EXPECT_EQ(l.acquire("b", t), 0);
  EXPECT_EQ(l.acquire("a", t), 1);  // a is used again: b is now the oldest
  EXPECT_EQ(l.acquire("c", t), 0);  // evicts b
  EXPECT_EQ(l.acquire("a", t), 1);  // a kept its empty bucket
  EXPECT_EQ(l.acquire("b", t), 0);  // b starts over with a full bucket
}
