#include "chat/delivery_filter.h"

#include <gtest/gtest.h>

using namespace parley::chat;

TEST(DeliveryFilter, MessagesNeverTwiceNorBackwardsPerRoom) {
  DeliveryFilter f;
  f.messages_sent_up_to(1, 3);  // a replay sent 1..3
  EXPECT_FALSE(f.admit_message(1, 2));
  EXPECT_FALSE(f.admit_message(1, 3));
  EXPECT_TRUE(f.admit_message(1, 4));
  EXPECT_FALSE(f.admit_message(1, 4));
  EXPECT_TRUE(f.admit_message(2, 1));  // rooms are independent
  EXPECT_EQ(f.last_message(1), 4);
  f.messages_sent_up_to(1, 2);  // never moves back
  EXPECT_EQ(f.last_message(1), 4);
}

TEST(DeliveryFilter, ABadgeNeverGoesBack) {
  DeliveryFilter f;
  EXPECT_TRUE(f.admit_badge(1, 5, 2));
  EXPECT_FALSE(f.admit_badge(1, 5, 2));  // the same state
  EXPECT_FALSE(f.admit_badge(1, 4, 4));  // older last_seq
  EXPECT_TRUE(f.admit_badge(1, 5, 5));   // a read
  EXPECT_FALSE(f.admit_badge(1, 5, 3));
  EXPECT_TRUE(f.admit_badge(1, 6, 5));
  EXPECT_TRUE(f.admit_badge(2, 1, 0));
}
