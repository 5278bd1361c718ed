#include "chat/unread_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace parley;
using namespace parley::chat;

TEST(UnreadTracker, TotalsComeFromEventsAndNoBadgeBeforeLoad) {
  UnreadTracker t;
  EXPECT_FALSE(t.apply(1, 3, 0));  // loading: no total yet, so no badge
  auto changed = t.load({{1, 2, 0}, {2, 5, 1}});
  EXPECT_EQ(changed, std::vector<Id>{1});  // the event changed room 1 while loading
  EXPECT_EQ(t.total(), 3 + 4);             // room 1 at (3,0) from the event beats the snapshot's (2,0)
  auto b = t.apply(2, 6, 1);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->unread, 5);
  EXPECT_EQ(b->total, 8);
  EXPECT_EQ(b->last_seq, 6);
}

TEST(UnreadTracker, OlderStatesAreIgnoredWhateverTheArrivalOrder) {
  UnreadTracker t;
  t.load({{1, 0, 0}});
  ASSERT_TRUE(t.apply(1, 5, 0));
  EXPECT_FALSE(t.apply(1, 4, 0));  // an older message arriving late
  EXPECT_FALSE(t.apply(1, 5, 0));  // the same state again
  auto read = t.apply(1, 5, 5);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->unread, 0);
  EXPECT_FALSE(t.apply(1, 5, 3));  // an older read
  EXPECT_EQ(t.total(), 0);
  EXPECT_FALSE(t.apply(1, 6, 6));  // the user's own send: the count stays 0, no badge
}

TEST(UnreadTracker, SnapshotAndEventsMergeToTheSameStateInAnyOrder) {
  // Random states of 5 rooms, applied as events in every order and merged with a snapshot
  // taken at an arbitrary point: the totals always equal the newest state of each room.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<RoomBadge> states;
    std::vector<RoomBadge> newest(5);
    for (Id r = 0; r < 5; ++r) {
      Seq last = 0, read = 0;
      newest[r] = {r + 1, 0, 0};
      for (int k = 0; k < 4; ++k) {
        if (rng() % 2)
          last += 1 + rng() % 3;
        else
          read = std::min(last, read + 1 + static_cast<Seq>(rng() % 3));
        states.push_back({r + 1, last, read});
        newest[r] = {r + 1, last, read};
      }
    }
    std::shuffle(states.begin(), states.end(), rng);
    std::size_t cut = rng() % (states.size() + 1);
    UnreadTracker t;
    for (std::size_t i = 0; i < cut; ++i) t.apply(states[i].room, states[i].last_seq, states[i].read_seq);
    // The snapshot: some state of each room no newer than its newest.
    std::vector<RoomBadge> snap;
    for (const auto& s : states)
      if (std::none_of(snap.begin(), snap.end(), [&](const RoomBadge& x) { return x.room == s.room; }))
        snap.push_back(s);
    t.load(snap);
    for (std::size_t i = cut; i < states.size(); ++i) t.apply(states[i].room, states[i].last_seq, states[i].read_seq);
    Seq want = 0;
    for (const auto& n : newest) want += unread_count(n.last_seq, n.read_seq);
    ASSERT_EQ(t.total(), want) << "round " << round;
    for (const auto& n : newest) EXPECT_EQ(t.badge(n.room)->unread, unread_count(n.last_seq, n.read_seq));
  }
}

TEST(UnreadTracker, LeaveRemovesTheRoomAndLateEventsOfTheOldMembershipStayOut) {
  UnreadTracker t;
  t.load({{1, 4, 1}, {2, 2, 0}});
  EXPECT_EQ(t.total(), 5);
  t.leave(1, 6);  // left when the room was at 6
  EXPECT_EQ(t.total(), 2);
  EXPECT_FALSE(t.badge(1));
  EXPECT_FALSE(t.apply(1, 5, 1));  // a message from before the leave, arriving late
  EXPECT_FALSE(t.apply(1, 6, 1));
  EXPECT_EQ(t.total(), 2);
  auto j = t.join(1, 9, 9);  // re-joined later: counts again, from the join watermark
  ASSERT_TRUE(j);
  EXPECT_EQ(j->unread, 0);
  EXPECT_EQ(j->total, 2);
  t.leave(1, 7);  // a late leave of the old membership: ignored
  ASSERT_TRUE(t.badge(1));
  ASSERT_TRUE(t.apply(1, 10, 9));
  EXPECT_EQ(t.total(), 3);
}

TEST(UnreadTracker, AJoinAlwaysProducesABadgeOnceLoaded) {
  UnreadTracker t;
  t.load({});
  auto j = t.join(3, 0, 0);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->room, 3);
  EXPECT_EQ(j->unread, 0);
  EXPECT_FALSE(t.join(3, 0, 0));  // the same join again
  auto badges = t.badges();
  ASSERT_EQ(badges.size(), 1u);
}

TEST(UnreadTracker, ABadgeFollowsNewUnreadMessagesEvenWhenTheCountComesOutEqual) {
  // (4,3) → [read to (4,4), superseded] → (5,4): the count is 1 before and after, but a
  // message from someone else (seq 5) is unread now: the badge moves to last_seq 5.
  UnreadTracker t;
  t.load({{1, 4, 3}});
  auto b = t.apply(1, 5, 4, true);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->unread, 1);
  EXPECT_EQ(b->last_seq, 5);
  EXPECT_FALSE(t.apply(1, 4, 4));  // the late read: older, nothing to send
  EXPECT_TRUE(t.apply(1, 6, 6));   // own send: the count falls to 0, a change
  EXPECT_FALSE(t.apply(1, 7, 7));  // own send again: nothing unread before or after, no badge
}

TEST(UnreadTracker, ALateMessageFromSomeoneElseStillMovesTheBadgePastIt) {
  // The user's own send (7,7) overtakes someone else's message (6,5): the count is 0 either
  // way, but the client must learn that message 6 exists: a badge at the newest state.
  UnreadTracker t;
  t.load({{1, 5, 5}});
  EXPECT_FALSE(t.apply(1, 7, 7));  // own send, nothing unread: no badge
  auto b = t.apply(1, 6, 5, true);  // the late message of someone else
  ASSERT_TRUE(b);
  EXPECT_EQ(b->last_seq, 7);
  EXPECT_EQ(b->unread, 0);
  EXPECT_FALSE(t.apply(1, 6, 5, true));  // given once
}

TEST(UnreadTracker, ReloadAfterAnOutageTakesNewerStatesAndMissedLeaves) {
  UnreadTracker t;
  t.load({{1, 4, 4}, {2, 3, 1}, {3, 2, 2}});
  ASSERT_EQ(t.total(), 2);
  auto mark = t.begin_reload();
  // An event after begin_reload: a join of room 4 the snapshot read may predate.
  ASSERT_TRUE(t.join(4, 7, 7));
  // Storage: room 1 got 3 messages (missed), room 2 was read up (missed), room 3 was left
  // (missed), room 4 not in the snapshot (joined after it was read).
  auto re = t.reload({{1, 7, 4}, {2, 3, 3}}, mark);
  EXPECT_EQ(re.changed, (std::vector<Id>{1, 2}));
  EXPECT_EQ(re.left, std::vector<Id>{3});
  EXPECT_EQ(t.total(), 3);
  EXPECT_EQ(t.badge(1)->unread, 3);
  EXPECT_EQ(t.badge(2)->unread, 0);
  EXPECT_FALSE(t.badge(3));
  ASSERT_TRUE(t.badge(4));
  // A late event of the old membership of room 3 does not bring it back.
  EXPECT_FALSE(t.apply(3, 2, 1));
  EXPECT_EQ(t.total(), 3);
  // An older snapshot state changes nothing.
  auto again = t.reload({{1, 6, 4}, {2, 3, 3}, {4, 7, 7}}, t.begin_reload());
  EXPECT_TRUE(again.changed.empty());
  EXPECT_TRUE(again.left.empty());
  EXPECT_EQ(t.total(), 3);
}
