#include "chat/validation.h"

#include <gtest/gtest.h>

#include "common/error.h"

using namespace parley::chat;

TEST(Validation, UsernameIsLowerCasedAndChecked) {
  EXPECT_EQ(normalize_username("Alice_01"), "alice_01");
  EXPECT_EQ(normalize_username("a.b-c"), "a.b-c");
  EXPECT_THROW(normalize_username("ab"), parley::Error);
  EXPECT_THROW(normalize_username(std::string(33, 'a')), parley::Error);
  EXPECT_THROW(normalize_username("bad name"), parley::Error);
  EXPECT_THROW(normalize_username("caf\xC3\xA9"), parley::Error);
}

TEST(Validation, PasswordLength) {
  EXPECT_NO_THROW(check_password("12345678"));
  EXPECT_THROW(check_password("1234567"), parley::Error);
  EXPECT_NO_THROW(check_password(std::string(128, 'x')));
  EXPECT_THROW(check_password(std::string(129, 'x')), parley::Error);
}

TEST(Validation, ContentLimits) {
  EXPECT_NO_THROW(check_content("x"));
  EXPECT_NO_THROW(check_content(std::string(16384, 'x')));
  EXPECT_THROW(check_content(std::string(16385, 'x')), parley::Error);
  EXPECT_THROW(check_content(""), parley::Error);
  EXPECT_THROW(check_content(" \n\t"), parley::Error);
  EXPECT_THROW(check_content("\xC3"), parley::Error);
  try {
    check_content("");
  } catch (const parley::Error& e) {
    EXPECT_EQ(e.kind(), parley::ErrorKind::BadInput);
    EXPECT_EQ(e.code(), "invalid_request");
  }
}

TEST(Validation, ClientMsgId) {
  EXPECT_NO_THROW(check_client_msg_id("abc-123"));
  EXPECT_NO_THROW(check_client_msg_id(std::string(64, 'a')));
  EXPECT_THROW(check_client_msg_id(""), parley::Error);
  EXPECT_THROW(check_client_msg_id(std::string(65, 'a')), parley::Error);
  EXPECT_THROW(check_client_msg_id("a\nb"), parley::Error);
}

// Reactions: one extended grapheme cluster (UAX #29) of at most 32 bytes, refused with
// invalid_emoji otherwise.
TEST(Validation, EmojiAcceptsOneGraphemeCluster) {
  for (const char* ok : {
           "\xF0\x9F\x91\x8D",                                                  // 👍
           "\xE2\x9D\xA4\xEF\xB8\x8F",                                          // ❤️ (with VS16)
           "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",                                  // 👍🏽 (skin tone)
           "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",  // 👨‍👩‍👧 (ZWJ family)
           "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",                                  // 🇫🇷 (flag)
           "1\xEF\xB8\x8F\xE2\x83\xA3",                                         // 1️⃣ (keycap)
           // 🏴󠁧󠁢󠁳󠁣󠁴󠁿 (Scotland: a tag sequence, 28 bytes)
           "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xB3\xF3\xA0\x81\xA3\xF3\xA0\x81\xB4\xF3\xA0\x81\xBF",
           "a", "e\xCC\x81",  // one letter, and a letter with its combining accent
       })
    EXPECT_NO_THROW(check_emoji(ok)) << ok;
}

TEST(Validation, EmojiRefusals) {
  std::string ok32 = "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7";  // 18 bytes
  for (const std::string& bad : std::initializer_list<std::string>{
           "",
           "\xF0\x9F\x91\x8D\xF0\x9F\x91\x8D",  // 👍👍: two clusters
           "ab",
           std::string(33, 'a'),
           "e" + std::string(16, '\xCC'),  // not UTF-8 (lone lead bytes)
           "\xFF",
           "\xC3",                              // truncated sequence
           "\xED\xA0\x80",                      // a surrogate
           "\xCC\x81",                          // a lone combining mark
           "\xE2\x80\x8D",                      // a lone ZWJ
           "\xEF\xB8\x8F",                      // a lone variation selector
           " ", "\t", "\n", "\x7F", "\xC2\x85", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8",  // space, controls
       }) {
    try {
      check_emoji(bad);
      ADD_FAILURE() << "accepted: " << ::testing::PrintToString(bad);
    } catch (const parley::Error& e) {
      EXPECT_EQ(e.kind(), parley::ErrorKind::BadInput);
      EXPECT_EQ(e.code(), "invalid_emoji");
    }
  }
  // One cluster of 32 bytes (👨‍👩‍👧‍👦‍👦) passes; with one more code point (35 bytes) it does not.
  std::string big = ok32 + "\xE2\x80\x8D\xF0\x9F\x91\xA6" + "\xE2\x80\x8D\xF0\x9F\x91\xA6";  // 32 bytes
  EXPECT_EQ(big.size(), 32u);
  EXPECT_NO_THROW(check_emoji(big));
  EXPECT_THROW(check_emoji(big + "\xEF\xB8\x8F"), parley::Error);  // 35 bytes
}
