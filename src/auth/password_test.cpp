#include "auth/password.h"

#include <gtest/gtest.h>

TEST(Password, HashIsArgon2idAndVerifies) {
  auto h = parley::auth::hash_password("correct horse");
  EXPECT_EQ(h.rfind("$argon2id$", 0), 0u) << h;
  EXPECT_TRUE(parley::auth::verify_password(h, "correct horse"));
  EXPECT_FALSE(parley::auth::verify_password(h, "wrong horse"));
  EXPECT_NE(parley::auth::hash_password("correct horse"), h);  // salted
}
