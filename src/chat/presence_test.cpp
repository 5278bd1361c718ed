// Presence transitions with the time passed in (no sleeps): the local ledger and the graces,
// alone and together as an instance runs them (net/presence_keeper.cpp).
#include "chat/presence.h"

#include <gtest/gtest.h>

using namespace parley;
using namespace parley::chat;
using namespace std::chrono_literals;

namespace {

// What an instance does with its ledger and graces, with a fake clock: the announcements.
struct Instance {
  LocalPresenceLedger ledger;
  PresenceGraces graces{5000ms};
  PresenceGraces::Time t{};
  TimeMs wall = 1000000;
  std::vector<std::pair<bool, TimeMs>> said;  // (online, last_seen or at)

  void open(Id u) {
    graces.cancel(u);
    if (ledger.here(u, wall)) said.emplace_back(true, wall);
  }
  void close(Id u) {
    if (auto m = ledger.gone(u, wall)) graces.start(u, *m, wall, t);
  }
  void advance(std::chrono::milliseconds d) {
    t += d;
    wall += d.count();
    for (const auto& due : graces.due(t))
      if (ledger.settle(due.user, due.mark)) said.emplace_back(false, due.closed_at);
  }
};

}  // namespace

TEST(PresenceLedger, FirstConnectionAnnouncesOnlineOnceAndOfflineOnlyThroughTheGrace) {
  LocalPresenceLedger l;
  EXPECT_FALSE(l.online(7));
  EXPECT_TRUE(l.here(7, 1));
  EXPECT_TRUE(l.online(7));
  auto m = l.gone(7, 2);
  ASSERT_TRUE(m);
  EXPECT_TRUE(l.online(7));  // in the grace: still online
  EXPECT_TRUE(l.settle(7, *m));
  EXPECT_FALSE(l.online(7));
  EXPECT_FALSE(l.settle(7, *m));  // once
  EXPECT_EQ(l.size(), 0u);        // offline users are not remembered
}

TEST(PresenceLedger, AReconnectInTheGraceMakesItsSettleDoNothing) {
  LocalPresenceLedger l;
  ASSERT_TRUE(l.here(7, 1));
  auto m = l.gone(7, 2);
  EXPECT_FALSE(l.here(7, 3));  // already announced online: nothing to say
  EXPECT_FALSE(l.settle(7, *m));
  EXPECT_TRUE(l.online(7));
  auto m2 = l.gone(7, 4);
  ASSERT_TRUE(m2);
  EXPECT_NE(*m, *m2);
  EXPECT_FALSE(l.settle(7, *m));  // the older grace still does nothing
  EXPECT_TRUE(l.settle(7, *m2));
}

TEST(PresenceLedger, AGoneWithoutAHereIsNoGrace) {
  LocalPresenceLedger l;
  EXPECT_FALSE(l.gone(7, 1));
}

TEST(PresenceGraces, DueInDeadlineOrderAndCancelled) {
  PresenceGraces g(5000ms);
  PresenceGraces::Time t{};
  g.start(1, 11, 100, t);
  g.start(2, 12, 200, t + 1000ms);
  g.start(3, 13, 300, t + 2000ms);
  g.cancel(2);
  EXPECT_EQ(g.deadline(), t + 5000ms);
  EXPECT_TRUE(g.due(t + 4999ms).empty());
  EXPECT_EQ(g.due(t + 7000ms), (std::vector<PresenceGraces::Due>{{1, 11, 100}, {3, 13, 300}}));
  EXPECT_EQ(g.size(), 0u);
  EXPECT_FALSE(g.deadline());
}

TEST(PresenceGraces, ALaterCloseReplacesTheUsersGrace) {
  PresenceGraces g(5000ms);
  PresenceGraces::Time t{};
  g.start(1, 11, 100, t);
  g.start(1, 12, 200, t + 3000ms);
  EXPECT_EQ(g.size(), 1u);
  EXPECT_TRUE(g.due(t + 5000ms).empty());
  EXPECT_EQ(g.due(t + 8000ms), (std::vector<PresenceGraces::Due>{{1, 12, 200}}));
}

TEST(Presence, OfflineAfterTheGraceWithTheCloseTimeAsLastSeen) {
  Instance i;
  i.open(7);
  i.advance(1000ms);
  TimeMs closed = i.wall;
  i.close(7);
  i.advance(4999ms);
  EXPECT_EQ(i.said.size(), 1u);  // online only
  i.advance(1ms);
  ASSERT_EQ(i.said.size(), 2u);
  EXPECT_EQ(i.said[1], std::make_pair(false, closed));  // the start of the offline period
}

TEST(Presence, AReconnectWithinTheGraceSaysNothing) {
  Instance i;
  i.open(7);
  i.close(7);
  i.advance(3000ms);
  i.open(7);
  i.advance(10000ms);
  EXPECT_EQ(i.said.size(), 1u);
  // The grace runs from the last close: a close 3 s into an earlier grace is 5 s more online.
  i.close(7);
  i.advance(3000ms);
  i.open(7);
  i.close(7);
  i.advance(4000ms);
  EXPECT_EQ(i.said.size(), 1u);
  i.advance(1000ms);
  EXPECT_EQ(i.said.size(), 2u);
}

TEST(Presence, NeverTheSameStatusTwiceInARow) {
  Instance i;
  for (int round = 0; round < 3; ++round) {
    i.open(7);
    i.close(7);
    i.advance(6000ms);
  }
  ASSERT_EQ(i.said.size(), 6u);
  for (std::size_t k = 0; k < i.said.size(); ++k) EXPECT_EQ(i.said[k].first, k % 2 == 0);
}
