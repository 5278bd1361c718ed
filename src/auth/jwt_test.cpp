#include "auth/jwt.h"

#include <gtest/gtest.h>

using parley::auth::JwtCodec;

namespace {
const std::string kKey(40, 'k');
constexpr parley::TimeMs kNow = 1795514400000;
}  // namespace

TEST(Jwt, RoundTrip) {
  JwtCodec c(kKey, 3600);
  auto t = c.issue(42, kNow);
  EXPECT_EQ(c.verify(t, kNow), 42);
  EXPECT_EQ(c.verify(t, kNow + 3599 * 1000), 42);
}

TEST(Jwt, ExpiredIsRefused) {
  JwtCodec c(kKey, 3600);
  auto t = c.issue(42, kNow);
  EXPECT_FALSE(c.verify(t, kNow + 3600 * 1000).has_value());
}

TEST(Jwt, OtherKeyIsRefused) {
  JwtCodec a(kKey, 3600), b(std::string(40, 'z'), 3600);
  EXPECT_FALSE(b.verify(a.issue(42, kNow), kNow).has_value());
}

TEST(Jwt, TamperedAndMalformedAreRefused) {
  JwtCodec c(kKey, 3600);
  auto t = c.issue(42, kNow);
  auto bad = t;
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(c.verify(bad, kNow).has_value());
  EXPECT_FALSE(c.verify("", kNow).has_value());
  EXPECT_FALSE(c.verify("a.b.c", kNow).has_value());
  EXPECT_FALSE(c.verify("not a token", kNow).has_value());
}

TEST(Jwt, AlgNoneIsRefused) {
  JwtCodec c(kKey, 3600);
  // {"alg":"none","typ":"JWT"} . {"sub":"42","iss":"parley","iat":1795514400,"exp":1895514400} .
  std::string none =
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
      "eyJzdWIiOiI0MiIsImlzcyI6InBhcmxleSIsImlhdCI6MTc5NTUxNDQwMCwiZXhwIjoxODk1NTE0NDAwfQ.";
  EXPECT_FALSE(c.verify(none, kNow).has_value());
}

TEST(Jwt, ShortKeyIsRejected) { EXPECT_THROW(JwtCodec(std::string(31, 'k'), 60), std::invalid_argument); }
