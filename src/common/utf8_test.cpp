#include "common/utf8.h"

#include <gtest/gtest.h>

using parley::is_blank_utf8;
using parley::is_valid_utf8;

TEST(Utf8, AcceptsWellFormed) {
  EXPECT_TRUE(is_valid_utf8("hello"));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo"));          // é
  EXPECT_TRUE(is_valid_utf8("\xE2\x82\xAC"));          // €
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));      // 😀
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));  // NUL is a valid code point
}

TEST(Utf8, RejectsMalformed) {
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("ok\x80"));
}

TEST(Utf8, BlankMeansOnlyWhiteSpace) {
  EXPECT_TRUE(is_blank_utf8(" \t\r\n"));
  EXPECT_TRUE(is_blank_utf8("\xC2\xA0\xE3\x80\x80"));  // NBSP, ideographic space
  EXPECT_TRUE(is_blank_utf8("\xE2\x80\x8B"));          // zero-width space
  EXPECT_FALSE(is_blank_utf8(" a "));
  EXPECT_FALSE(is_blank_utf8("\xE2\x82\xAC"));
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(parley::to_valid_utf8("abc"), "abc");
  EXPECT_EQ(parley::to_valid_utf8("h\xc3\xa9llo"), "h\xc3\xa9llo");
  EXPECT_EQ(parley::to_valid_utf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(parley::to_valid_utf8("\xc3"), "\xef\xbf\xbd");              // truncated sequence
  EXPECT_EQ(parley::to_valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  EXPECT_TRUE(parley::is_valid_utf8(parley::to_valid_utf8("\xf0\x28\x8c\x28 \xe2\x82")));
}
