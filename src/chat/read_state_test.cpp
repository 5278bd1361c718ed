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

TEST(ReadState, AReadImpliesDelivered) {
  EXPECT_EQ(raise_delivered(3, 5), 5);
  EXPECT_EQ(raise_delivered(7, 5), 7);  // delivered ahead of read stays
}

TEST(ReadState, TicksFollowFromTheRecipientsWatermarksAlone) {
  struct M {
    User user;
    Seq read_seq, delivered_seq;
  };
  auto m = [](parley::Id id, Seq read, Seq delivered) { return M{User{id, "", 0}, read, delivered}; };
  // Message 5 of user 1 in a room of users 1, 2, 3; the sender's own watermarks do not count.
  EXPECT_EQ(tick_of(5, 1, std::vector<M>{m(1, 5, 5), m(2, 0, 4), m(3, 0, 9)}), Tick::Sent);
  EXPECT_EQ(tick_of(5, 1, std::vector<M>{m(1, 0, 0), m(2, 0, 5), m(3, 2, 9)}), Tick::Delivered);
  EXPECT_EQ(tick_of(5, 1, std::vector<M>{m(1, 0, 0), m(2, 5, 0), m(3, 6, 6)}), Tick::Read);  // a read is a delivery
  EXPECT_EQ(tick_of(5, 1, std::vector<M>{m(1, 5, 5), m(2, 5, 5), m(3, 4, 5)}), Tick::Delivered);
  EXPECT_EQ(tick_of(5, 1, std::vector<M>{m(1, 5, 5)}), Tick::Read);  // nobody else: nothing pending
}
