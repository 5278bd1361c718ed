#include "common/ids.h"

#include <gtest/gtest.h>

TEST(Ids, ParsesPositiveDecimal) {
  EXPECT_EQ(parley::parse_id("1"), 1);
  EXPECT_EQ(parley::parse_id("123456789012345678"), 123456789012345678);
  EXPECT_EQ(parley::format_id(42), "42");
}

TEST(Ids, RejectsMalformed) {
  for (const char* s : {"", "0", "01", "-1", "+1", "1a", "abc", " 1", "1234567890123456789", "1.0"})
    EXPECT_FALSE(parley::parse_id(s).has_value()) << s;
}
