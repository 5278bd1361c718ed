#include "common/token_bucket.h"

#include <gtest/gtest.h>

#include <cmath>

using parley::TokenBucket;
using namespace std::chrono_literals;

namespace {
const TokenBucket::Clock::time_point t0{};
}

TEST(TokenBucket, StartsFullAndSpendsTheBurst) {
  TokenBucket b(1, 3, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_TRUE(b.take(t0));
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0));
  EXPECT_DOUBLE_EQ(b.seconds_until_token(), 1.0);
}

TEST(TokenBucket, RefillsByElapsedTime) {
  TokenBucket b(10, 1, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 50ms));  // half a token
  EXPECT_NEAR(b.seconds_until_token(), 0.05, 1e-9);
  EXPECT_TRUE(b.take(t0 + 100ms));
  EXPECT_FALSE(b.take(t0 + 100ms));
}

TEST(TokenBucket, NeverHoldsMoreThanTheBurst) {
  TokenBucket b(100, 2, t0);
  EXPECT_TRUE(b.take(t0 + 1h));
  EXPECT_TRUE(b.take(t0 + 1h));
  EXPECT_FALSE(b.take(t0 + 1h));
}

TEST(TokenBucket, ATimeFromBeforeTheLastCallAddsNothing) {
  TokenBucket b(1, 1, t0 + 10s);
  EXPECT_TRUE(b.take(t0 + 10s));
  EXPECT_FALSE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 10s));  // the clock did not go back to t0 either
  EXPECT_TRUE(b.take(t0 + 11s));
}

TEST(TokenBucket, BurstBelowOneHoldsOneToken) {
  TokenBucket b(1, 0.2, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0));
}

TEST(TokenBucket, ZeroRateNeverRefills) {
  TokenBucket b(0, 1, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 24h));
  EXPECT_TRUE(std::isinf(b.seconds_until_token()));
}

TEST(TokenBucket, FractionalRate) {
  TokenBucket b(0.5, 1, t0);  // one token every two seconds
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 1s));
  EXPECT_DOUBLE_EQ(b.seconds_until_token(), 1.0);
  EXPECT_TRUE(b.take(t0 + 2s));
}
