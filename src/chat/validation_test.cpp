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
