#include "chat/typing.h"

#include <gtest/gtest.h>

using namespace parley;
using namespace parley::chat;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

namespace {
const TypingTime T0 = TypingTime{} + 1h;
TypingSignal start_of(Id room, Id user, ms ttl) { return TypingSignal{room, user, true, ttl}; }
TypingSignal stop_of(Id room, Id user) { return TypingSignal{room, user, false, ms(0)}; }
}  // namespace

TEST(TypingCoalescer, FirstStartGoesOutAtOnceWithTheFullLifetime) {
  TypingCoalescer c;
  auto o = c.start(7, 3, T0);
  EXPECT_FALSE(o.refused);
  ASSERT_TRUE(o.send);
  EXPECT_EQ(*o.send, start_of(3, 7, 6000ms));
  EXPECT_EQ(c.deadline(), T0 + 6s);  // nothing pending: the entry lives until it expires
}

TEST(TypingCoalescer, ABurstOfStartsInOneSecondSendsTwoTheSecondWithWhatIsLeft) {
  TypingCoalescer c;
  int sent = 0;
  for (int i = 0; i < 20; ++i)
    if (c.start(7, 3, T0 + ms(i * 40)).send) ++sent;  // 20 starts within 760 ms
  EXPECT_EQ(sent, 1);
  EXPECT_EQ(c.deadline(), T0 + 1s);  // the trailing start
  EXPECT_TRUE(c.due(T0 + 999ms).empty());
  auto out = c.due(T0 + 1s);
  // The last start was at 760 ms: it ends at 6,760 ms, 5,760 ms after the trailing send.
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], start_of(3, 7, 5760ms));
  // Nothing more until it expires, and no stop from this side then (receivers end it).
  EXPECT_EQ(c.deadline(), T0 + 6760ms);
  EXPECT_TRUE(c.due(T0 + 6760ms).empty());
  EXPECT_EQ(c.size(), 0u);
}

TEST(TypingCoalescer, StartsOnceASecondGoOutEachTime) {
  TypingCoalescer c;
  for (int i = 0; i < 5; ++i) {
    auto o = c.start(7, 3, T0 + ms(i * 1000));
    ASSERT_TRUE(o.send) << i;
    EXPECT_TRUE(c.due(T0 + ms(i * 1000 + 999)).empty());
  }
}

TEST(TypingCoalescer, StopGoesOutAtOnceAndCancelsAPendingStart) {
  TypingCoalescer c;
  c.start(7, 3, T0);
  EXPECT_FALSE(c.start(7, 3, T0 + 100ms).send);  // pending
  EXPECT_EQ(c.stop(7, 3, T0 + 200ms), stop_of(3, 7));
  EXPECT_TRUE(c.due(T0 + 5s).empty());  // the pending start was cancelled
  EXPECT_EQ(c.size(), 0u);
}

TEST(TypingCoalescer, StopWithNothingShownSendsNothing) {
  TypingCoalescer c;
  EXPECT_FALSE(c.stop(7, 3, T0));  // never started
  c.start(7, 3, T0);
  EXPECT_TRUE(c.stop(7, 3, T0 + 10ms));
  EXPECT_FALSE(c.stop(7, 3, T0 + 20ms));  // twice: the second is not needed
  EXPECT_FALSE(c.start(7, 3, T0 + 30ms).send);  // within the interval of the last start: pending
  EXPECT_FALSE(c.stop(7, 3, T0 + 40ms));        // nothing was shown: the pending start just goes
  c.start(7, 3, T0 + 2s);
  EXPECT_FALSE(c.stop(7, 3, T0 + 8s + 1ms));  // expired by itself: no stop needed
}

TEST(TypingCoalescer, ToggleFastAtMostOneStartPerInterval) {
  TypingCoalescer c;
  int starts = 0, stops = 0;
  std::vector<TypingSignal> all;
  for (int i = 0; i < 100; ++i) {  // start, stop, start, stop … every 10 ms for a second
    auto now = T0 + ms(i * 10);
    for (auto& s : c.due(now)) all.push_back(s);
    if (i % 2 == 0) {
      if (auto o = c.start(7, 3, now); o.send) all.push_back(*o.send);
    } else if (auto s = c.stop(7, 3, now)) {
      all.push_back(*s);
    }
  }
  for (auto& s : c.due(T0 + 1s)) all.push_back(s);
  for (auto& s : all) (s.start ? starts : stops)++;
  EXPECT_EQ(starts, 1);  // the first; later ones were pending and cancelled by their stops
  EXPECT_EQ(stops, 1);
}

TEST(TypingCoalescer, GoneSendsTheStopOnlyWhenShownAndForgets) {
  TypingCoalescer c;
  c.start(7, 3, T0);
  c.start(7, 4, T0);
  c.start(8, 3, T0);
  EXPECT_EQ(c.rooms_of(7), (std::vector<Id>{3, 4}));
  EXPECT_EQ(c.gone(7, 3), stop_of(3, 7));
  EXPECT_EQ(c.rooms_of(7), (std::vector<Id>{4}));
  c.stop(7, 4, T0 + 1ms);
  EXPECT_FALSE(c.gone(7, 4));  // stopped already
  EXPECT_TRUE(c.rooms_of(7).empty());
  EXPECT_FALSE(c.gone(9, 3));
}

TEST(TypingCoalescer, BoundedRefusesNewPairsWhenFullAndMakesRoomAsEntriesEnd) {
  TypingCoalescer c(TypingLimits{6000ms, 1000ms, 3});
  for (Id u = 1; u <= 3; ++u) EXPECT_TRUE(c.start(u, 1, T0).send);
  auto o = c.start(4, 1, T0);
  EXPECT_TRUE(o.refused);
  EXPECT_FALSE(o.send);
  EXPECT_FALSE(c.start(1, 1, T0 + 10ms).refused);  // a known pair is not refused
  EXPECT_EQ(c.size(), 3u);
  c.due(T0 + 7s);  // all expired
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.start(4, 1, T0 + 7s).send);
}

TEST(TypingBoard, StartsShowRefreshesExtendStopsEndOnce) {
  TypingBoard b;
  EXPECT_TRUE(b.start(3, 7, 6000ms, T0));
  EXPECT_TRUE(b.start(3, 7, 6000ms, T0 + 2s));  // a refresh is shown too (at most one a second)
  EXPECT_TRUE(b.due(T0 + 7s).empty());          // extended to 8 s
  EXPECT_TRUE(b.stop(3, 7));
  EXPECT_FALSE(b.stop(3, 7));  // never a stop twice
  EXPECT_TRUE(b.due(T0 + 9s).empty());
}

TEST(TypingBoard, ExpiresByItselfAfterTheTtlWhenTheTyperIsGone) {
  TypingBoard b;
  b.start(3, 7, 6000ms, T0);
  b.start(3, 8, 2500ms, T0);  // a trailing start with what was left
  EXPECT_EQ(b.deadline(), T0 + 2500ms);
  EXPECT_EQ(b.due(T0 + 2500ms), (std::vector<TypingSignal>{stop_of(3, 8)}));
  EXPECT_TRUE(b.typing(3, 7));
  EXPECT_EQ(b.due(T0 + 6s), (std::vector<TypingSignal>{stop_of(3, 7)}));
  EXPECT_FALSE(b.stop(3, 7));  // the late stop from the typer is not shown again
  EXPECT_EQ(b.size(), 0u);
  EXPECT_FALSE(b.deadline());
}

TEST(TypingBoard, ARemoteTtlIsCappedAtTheExpiry) {
  TypingBoard b;
  b.start(3, 7, 3600000ms, T0);
  EXPECT_EQ(b.deadline(), T0 + 6s);
}

TEST(TypingBoard, BoundedDropsNewPairsWhenFull) {
  TypingBoard b(TypingLimits{6000ms, 1000ms, 2});
  EXPECT_TRUE(b.start(1, 1, 6000ms, T0));
  EXPECT_TRUE(b.start(1, 2, 6000ms, T0));
  EXPECT_FALSE(b.start(1, 3, 6000ms, T0));
  EXPECT_FALSE(b.stop(1, 3));  // its stop is not shown either
  EXPECT_TRUE(b.start(1, 1, 6000ms, T0 + 1s));  // known pairs go on
  EXPECT_TRUE(b.stop(1, 2));
  EXPECT_TRUE(b.start(1, 3, 6000ms, T0 + 1s));
}
