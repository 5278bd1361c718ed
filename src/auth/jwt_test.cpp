#include "auth/jwt.h"

#include <gtest/gtest.h>
#include <jwt.h>

#include <cstdlib>

using parley::auth::JwtCodec;

namespace {
const std::string kKey(40, 'k');
const std::string kDb = "0123456789abcdef0123456789abcdef";
constexpr parley::TimeMs kNow = 1795514400000;

// A token signed with kKey holding exactly the given claims (string and integer ones), to
// check what verify() makes of tokens this codec would never issue.
std::string signed_with(const std::vector<std::pair<const char*, std::string>>& strs,
                        const std::vector<std::pair<const char*, long>>& ints) {
  jwt_t* j = nullptr;
  EXPECT_EQ(jwt_new(&j), 0);
  for (auto& [k, v] : strs) jwt_add_grant(j, k, v.c_str());
  for (auto& [k, v] : ints) jwt_add_grant_int(j, k, v);
  jwt_set_alg(j, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(kKey.data()), static_cast<int>(kKey.size()));
  char* s = jwt_encode_str(j);
  std::string out(s);
  free(s);
  jwt_free(j);
  return out;
}
}  // namespace

TEST(Jwt, RoundTrip) {
  JwtCodec c(kKey, 3600, kDb);
  auto t = c.issue(42, 7, kNow);
  auto v = c.verify(t, kNow);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->user, 42);
  EXPECT_EQ(v->version, 7);
  EXPECT_EQ(c.verify(t, kNow + 3599 * 1000)->user, 42);
}

TEST(Jwt, TheVersionClaimIsCarried) {
  JwtCodec c(kKey, 3600, kDb);
  EXPECT_EQ(c.verify(c.issue(42, 0, kNow), kNow)->version, 0);
  EXPECT_EQ(c.verify(c.issue(42, 123456, kNow), kNow)->version, 123456);
  EXPECT_THROW(c.issue(42, -1, kNow), std::invalid_argument);
}

TEST(Jwt, ExpiredIsRefused) {
  JwtCodec c(kKey, 3600, kDb);
  auto t = c.issue(42, 0, kNow);
  EXPECT_FALSE(c.verify(t, kNow + 3600 * 1000).has_value());
}

TEST(Jwt, OtherKeyIsRefused) {
  JwtCodec a(kKey, 3600, kDb), b(std::string(40, 'z'), 3600, kDb);
  EXPECT_FALSE(b.verify(a.issue(42, 0, kNow), kNow).has_value());
}

TEST(Jwt, AnotherDatabasesTokenIsRefusedEvenWithTheSameKey) {
  JwtCodec a(kKey, 3600, kDb), b(kKey, 3600, "fedcba9876543210fedcba9876543210");
  auto t = a.issue(42, 0, kNow);
  EXPECT_TRUE(a.verify(t, kNow).has_value());
  EXPECT_FALSE(b.verify(t, kNow).has_value());
}

TEST(Jwt, ATokenWithoutTheDatabaseOrVersionClaimIsRefused) {
  JwtCodec c(kKey, 3600, kDb);
  long iat = static_cast<long>(kNow / 1000);
  // What the codec issues, built by hand: accepted (so the refusals below are the claims').
  auto full = signed_with({{"sub", "42"}, {"iss", "parley"}, {"db", kDb}}, {{"ver", 3}, {"iat", iat}, {"exp", iat + 60}});
  ASSERT_TRUE(c.verify(full, kNow).has_value());
  EXPECT_EQ(c.verify(full, kNow)->version, 3);
  auto no_db = signed_with({{"sub", "42"}, {"iss", "parley"}}, {{"ver", 0}, {"iat", iat}, {"exp", iat + 60}});
  EXPECT_FALSE(c.verify(no_db, kNow).has_value());
  auto no_ver = signed_with({{"sub", "42"}, {"iss", "parley"}, {"db", kDb}}, {{"iat", iat}, {"exp", iat + 60}});
  EXPECT_FALSE(c.verify(no_ver, kNow).has_value());
  auto string_ver =
      signed_with({{"sub", "42"}, {"iss", "parley"}, {"db", kDb}, {"ver", "0"}}, {{"iat", iat}, {"exp", iat + 60}});
  EXPECT_FALSE(c.verify(string_ver, kNow).has_value());
  auto negative_ver =
      signed_with({{"sub", "42"}, {"iss", "parley"}, {"db", kDb}}, {{"ver", -1}, {"iat", iat}, {"exp", iat + 60}});
  EXPECT_FALSE(c.verify(negative_ver, kNow).has_value());
}

TEST(Jwt, TamperedAndMalformedAreRefused) {
  JwtCodec c(kKey, 3600, kDb);
  auto t = c.issue(42, 0, kNow);
  auto bad = t;
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(c.verify(bad, kNow).has_value());
  EXPECT_FALSE(c.verify("", kNow).has_value());
  EXPECT_FALSE(c.verify("a.b.c", kNow).has_value());
  EXPECT_FALSE(c.verify("not a token", kNow).has_value());
}

TEST(Jwt, AlgNoneIsRefused) {
  JwtCodec c(kKey, 3600, kDb);
  // {"alg":"none","typ":"JWT"} . {"sub":"42","iss":"parley","iat":1795514400,"exp":1895514400} .
  std::string none =
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
      "eyJzdWIiOiI0MiIsImlzcyI6InBhcmxleSIsImlhdCI6MTc5NTUxNDQwMCwiZXhwIjoxODk1NTE0NDAwfQ.";
  EXPECT_FALSE(c.verify(none, kNow).has_value());
}

TEST(Jwt, ShortKeyOrEmptyDatabaseIdIsRejected) {
  EXPECT_THROW(JwtCodec(std::string(31, 'k'), 60, kDb), std::invalid_argument);
  EXPECT_THROW(JwtCodec(kKey, 60, ""), std::invalid_argument);
}

TEST(Jwt, TimesMustBeIntegers) {
  JwtCodec c(kKey, 3600, kDb);
  long iat = static_cast<long>(kNow / 1000);
  auto string_iat = signed_with({{"sub", "42"}, {"iss", "parley"}, {"db", kDb}, {"iat", std::to_string(iat)}},
                                {{"ver", 0}, {"exp", iat + 60}});
  EXPECT_FALSE(c.verify(string_iat, kNow).has_value());
}
