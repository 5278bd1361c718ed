#include "auth/url_signer.h"

#include <gtest/gtest.h>

using namespace parley;

namespace {
const std::string kKey = "0123456789abcdef0123456789abcdef-shared-jwt-key";
}

TEST(UrlSigner, AValidLinkIsAcceptedUntilItExpires) {
  auth::UrlSigner s(kKey);
  TimeMs now = 1795000000000;
  std::int64_t exp = now / 1000 + auth::UrlSigner::kValiditySeconds;
  std::string sig = s.sign(42, exp);
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(s.valid(42, exp, sig, now));
  EXPECT_TRUE(s.valid(42, exp, sig, exp * 1000));        // the last valid instant
  EXPECT_FALSE(s.valid(42, exp, sig, exp * 1000 + 1));   // expired
  EXPECT_EQ(s.url(42, now), "/api/uploads/42?exp=" + std::to_string(exp) + "&sig=" + sig);
}

TEST(UrlSigner, AnyChangeOfIdExpiryOrSignatureIsRefused) {
  auth::UrlSigner s(kKey);
  TimeMs now = 1795000000000;
  std::int64_t exp = now / 1000 + 600;
  std::string sig = s.sign(42, exp);
  EXPECT_FALSE(s.valid(43, exp, sig, now));
  EXPECT_FALSE(s.valid(42, exp + 1, sig, now));
  std::string bad = sig;
  bad[10] = bad[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(s.valid(42, exp, bad, now));
  EXPECT_FALSE(s.valid(42, exp, sig.substr(0, 62), now));
  EXPECT_FALSE(s.valid(42, exp, "zz" + sig.substr(2), now));
  EXPECT_FALSE(s.valid(42, exp, "", now));
}

TEST(UrlSigner, InstancesWithTheSameJwtKeyAgreeAndTheKeyIsNotTheJwtKey) {
  auth::UrlSigner a(kKey), b(kKey), other(kKey + "x");
  std::string sig = a.sign(7, 2000000000);
  EXPECT_TRUE(b.valid(7, 2000000000, sig, 0));
  EXPECT_FALSE(other.valid(7, 2000000000, sig, 0));
}
