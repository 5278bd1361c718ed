#include "api/http_types.h"

#include <gtest/gtest.h>

using parley::api::bearer_token;

TEST(BearerToken, TakesTheTokenAfterTheScheme) {
  EXPECT_EQ(bearer_token("Bearer abc.def-ghi_jkl"), "abc.def-ghi_jkl");
  EXPECT_EQ(bearer_token("Bearer a+b/c~d=="), "a+b/c~d==");
}

TEST(BearerToken, TheSchemeIsCaseInsensitive) {
  EXPECT_EQ(bearer_token("bearer tok"), "tok");
  EXPECT_EQ(bearer_token("BEARER tok"), "tok");
  EXPECT_EQ(bearer_token("BeArEr tok"), "tok");
}

TEST(BearerToken, WhiteSpaceAroundTheValueAndBetweenSchemeAndTokenIsIgnored) {
  EXPECT_EQ(bearer_token("  Bearer tok \t"), "tok");
  EXPECT_EQ(bearer_token("\tBearer tok"), "tok");
  EXPECT_EQ(bearer_token("Bearer    tok"), "tok");
}

TEST(BearerToken, OtherSchemesAndMalformedValuesAreRefused) {
  EXPECT_EQ(bearer_token(""), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer    "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearertok"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer\ttok"), std::nullopt);  // RFC 6750: 1*SP
  EXPECT_EQ(bearer_token("Basic dXNlcjpwYXNz"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearex tok"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer@tok"), std::nullopt);
  EXPECT_EQ(bearer_token("tok"), std::nullopt);
}

TEST(BearerToken, TheTokenMustBeOneB64token) {
  EXPECT_EQ(bearer_token("Bearer a b"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer a,b"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer a=b"), std::nullopt);  // '=' only at the end
  EXPECT_EQ(bearer_token("Bearer ==="), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer \"tok\""), std::nullopt);
  EXPECT_EQ(bearer_token(std::string_view("Bearer a\0b", 10)), std::nullopt);
}

TEST(BearerToken, TheResultPointsIntoTheInput) {
  std::string header = "Bearer xyz";
  auto t = bearer_token(header);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->data(), header.data() + 7);
}
