#include "chat/room_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

using namespace parley;
using namespace parley::chat;
using Seqr = RoomSequencer<Seq>;
using namespace std::chrono_literals;

namespace {
const auto t0 = Seqr::Clock::time_point{} + 1h;
}

TEST(RoomSequencer, ReleasesInOrderAndHoldsWhatComesEarly) {
  Seqr s;
  std::vector<Seq> out;
  s.anchor(1, 0, out);
  s.offer(1, 1, 1, t0, out);
  s.offer(1, 3, 3, t0, out);  // 2 is late
  EXPECT_EQ(out, (std::vector<Seq>{1}));
  EXPECT_EQ(s.held(), 1u);
  s.offer(1, 2, 2, t0 + 1ms, out);
  EXPECT_EQ(out, (std::vector<Seq>{1, 2, 3}));
  s.offer(1, 2, 2, t0 + 2ms, out);  // a duplicate
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(s.held(), 0u);
}

TEST(RoomSequencer, ShuffledArrivalsComeOutAsOneGapFreeAscendingRun) {
  std::mt19937 rng(3);
  for (int round = 0; round < 100; ++round) {
    std::vector<Seq> in(50);
    std::iota(in.begin(), in.end(), 11);
    // Local disorder, as parallel publishers give: swap neighbours within a window of 4.
    for (std::size_t i = 0; i + 1 < in.size(); ++i)
      if (rng() % 2) std::swap(in[i], in[std::min(in.size() - 1, i + rng() % 4)]);
    in.push_back(in[rng() % in.size()]);  // and a duplicate
    Seqr s;
    std::vector<Seq> out;
    s.anchor(7, 10, out);
    for (Seq q : in) s.offer(7, q, q, t0, out);
    std::vector<Seq> want(50);
    std::iota(want.begin(), want.end(), 11);
    ASSERT_EQ(out, want) << "round " << round;
  }
}

TEST(RoomSequencer, AGapIsFilledAfterTheHold) {
  Seqr s({100, 100, 200ms});
  std::vector<Seq> out;
  s.anchor(1, 4, out);
  s.offer(1, 7, 7, t0, out);
  s.offer(1, 8, 8, t0, out);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(s.due(t0 + 100ms, out).empty());  // still within the hold
  ASSERT_EQ(s.deadline(), t0 + 200ms);
  auto gaps = s.due(t0 + 200ms, out);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].room, 1);
  EXPECT_EQ(gaps[0].after, 4);  // fill 5 and 6
  EXPECT_EQ(gaps[0].before, 7);
  EXPECT_TRUE(s.due(t0 + 300ms, out).empty());  // reported once
  s.offer(1, 5, 5, t0 + 301ms, out);            // arrived while filling: released, the fill drops it
  s.filled(1, 7, t0 + 310ms, out);
  EXPECT_EQ(out, (std::vector<Seq>{5, 7, 8}));  // 6 came from storage (delivered by the caller)
  EXPECT_EQ(s.next(1), 9);
  s.offer(1, 6, 6, t0 + 400ms, out);  // the late original: a duplicate now
  EXPECT_EQ(out.size(), 3u);
}

TEST(RoomSequencer, UnanchoredRoomsHoldUntilAReceiverAnchorsThem) {
  Seqr s;
  std::vector<Seq> out;
  s.offer(2, 6, 6, t0, out);
  s.offer(2, 5, 5, t0, out);
  s.offer(2, 7, 7, t0, out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(s.anchored(2));
  s.anchor(2, 5, out);                          // a connection read the room up to 5
  EXPECT_EQ(out, (std::vector<Seq>{5, 6, 7}));  // 5 too: receivers that read less need it
  EXPECT_EQ(s.next(2), 8);
  s.anchor(2, 3, out);  // a later anchor changes nothing
  EXPECT_EQ(s.next(2), 8);
}

TEST(RoomSequencer, AnUnanchoredRoomStartsAtItsLowestHeldAfterTheHold) {
  Seqr s({100, 100, 200ms});
  std::vector<Seq> out;
  s.offer(3, 9, 9, t0, out);
  s.offer(3, 8, 8, t0 + 10ms, out);
  EXPECT_TRUE(s.due(t0 + 200ms, out).empty());
  EXPECT_EQ(out, (std::vector<Seq>{8, 9}));
  EXPECT_EQ(s.next(3), 10);
}

TEST(RoomSequencer, TooManyHeldMakesTheGapDueAtOnce) {
  Seqr s({100, 3, 10s});
  std::vector<Seq> out;
  s.anchor(1, 0, out);
  for (Seq q = 3; q <= 6; ++q) s.offer(1, q, q, t0, out);
  auto gaps = s.due(t0, out);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].after, 0);
  EXPECT_EQ(gaps[0].before, 3);
}

TEST(RoomSequencer, RoomsAreBounded) {
  Seqr s({4, 10, 1s});
  std::vector<Seq> out;
  for (Id r = 1; r <= 10; ++r) {
    s.anchor(r, 0, out);
    s.offer(r, 1, 1, t0, out);
  }
  EXPECT_EQ(s.rooms(), 4u);
  EXPECT_FALSE(s.knows(1));
  EXPECT_TRUE(s.knows(10));
}

TEST(RoomSequencer, BehindStorageFillsWhatNoHeldMessageWouldReveal) {
  Seqr s;
  std::vector<Seq> out;
  EXPECT_FALSE(s.behind(1, 5));  // not anchored: nothing to compare with
  s.anchor(1, 2, out);
  EXPECT_FALSE(s.behind(1, 2));  // not behind
  auto gap = s.behind(1, 5);     // storage has 3..5, none of them arrived
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->after, 2);
  EXPECT_EQ(gap->before, 6);
  EXPECT_FALSE(s.behind(1, 6));  // filling already: remembered, not reported twice
  s.offer(1, 4, 4, t0, out);     // a copy arriving late is held meanwhile
  auto more = s.filled(1, 6, t0, out);
  ASSERT_TRUE(more);  // storage said 6 exists too
  EXPECT_EQ(more->after, 5);
  EXPECT_EQ(more->before, 7);
  EXPECT_EQ(s.held(), 0u);  // the held copy of 4 was dropped as delivered
  EXPECT_FALSE(s.filled(1, 7, t0, out));
  EXPECT_EQ(s.next(1), 7);
  EXPECT_TRUE(out.empty());  // everything came from the fills
}

TEST(RoomSequencer, BehindWithHeldMessagesWaitsForTheirGapFirst) {
  Seqr s;
  std::vector<Seq> out;
  s.anchor(1, 0, out);
  s.offer(1, 3, 3, t0, out);         // 1 and 2 missing
  EXPECT_FALSE(s.behind(1, 5));      // the hold reports the first gap
  auto gaps = s.due(t0 + 300ms, out);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].before, 3);
  auto more = s.filled(1, 3, t0 + 310ms, out);
  EXPECT_EQ(out, std::vector<Seq>{3});
  ASSERT_TRUE(more);  // then 4..5 from storage
  EXPECT_EQ(more->after, 3);
  EXPECT_EQ(more->before, 6);
}

TEST(RoomSequencer, AForgottenRoomIsAnchoredAfreshButNotWhileItHoldsOrFills) {
  Seqr s;
  std::vector<Seq> out;
  s.anchor(1, 0, out);
  s.offer(1, 1, 1, t0, out);
  s.offer(1, 3, 3, t0, out);  // 2 missing: 3 held
  s.forget(1);                // holds a message: kept
  EXPECT_TRUE(s.anchored(1));
  auto gaps = s.due(t0 + 1s, out);
  ASSERT_EQ(gaps.size(), 1u);
  s.forget(1);  // a fill runs: kept
  EXPECT_TRUE(s.anchored(1));
  s.filled(1, 3, t0 + 1s, out);
  EXPECT_EQ(out, (std::vector<Seq>{1, 3}));
  s.forget(1);  // nothing held, nothing filling: gone
  EXPECT_FALSE(s.knows(1));
  // A later follower's read anchors it where storage is, not at 4: no gap for 4..99.
  out.clear();
  s.anchor(1, 99, out);
  s.offer(1, 100, 100, t0 + 2s, out);
  EXPECT_EQ(out, (std::vector<Seq>{100}));
  EXPECT_TRUE(s.due(t0 + 10s, out).empty());
}
