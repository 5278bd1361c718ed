#include "chat/read_state.h"

#include <gtest/gtest.h>

using namespace parley::chat;

TEST(ReadState, UnreadIsLastSeqMinusWatermark) {
  EXPECT_EQ(unread_count(0, 0), 0);
  EXPECT_EQ(unread_count(10, 3), 7);
  EXPECT_EQ(unread_count(10, 10), 0);
  EXPECT_EQ(unread_count(3, 10), 0);  // never negative
}

TEST(ReadState, WatermarkNeverMovesBackwards) {
  EXPECT_EQ(advance_watermark(5, 3, 10), 5);
  EXPECT_EQ(advance_watermark(5, 8, 10), 8);
}

TEST(ReadState, WatermarkNeverPassesLastSeq) { EXPECT_EQ(advance_watermark(5, 99, 10), 10); }

TEST(ReadState, JoinStartsAtLastSeqOrTheOldWatermark) {
  EXPECT_EQ(join_watermark(std::nullopt, 7), 7);
  EXPECT_EQ(join_watermark(3, 7), 7);
  EXPECT_EQ(join_watermark(9, 7), 9);
}
