#include "net/outbound_queue.h"

#include <gtest/gtest.h>

using namespace parley;
using parley::api::EventClass;
using Push = net::OutboundQueue::Push;

namespace {
api::OutEventPtr ev(EventClass cls, Id room, std::string payload, chat::Seq last = 0) {
  auto e = std::make_shared<api::OutEvent>();
  e->cls = cls;
  e->room = room;
  e->last_seq = last;
  e->payload = std::move(payload);
  return e;
}
std::vector<std::string> drain(net::OutboundQueue& q) {
  std::vector<api::OutEventPtr> out;
  q.take(out, 1000000);
  std::vector<std::string> s;
  for (auto& e : out) s.push_back(e->payload);
  return s;
}
}  // namespace

TEST(OutboundQueue, ABurstOfBadgesLeavesOnePendingPerRoomTheNewest) {
  net::OutboundQueue q({10, 1 << 20, 4});
  q.push(ev(EventClass::Message, 1, "m1"));
  for (int i = 1; i <= 1000; ++i)
    EXPECT_NE(q.push(ev(EventClass::Badge, 1, "b1-" + std::to_string(i), i)), Push::Overflow);
  q.push(ev(EventClass::Badge, 2, "b2"));
  q.push(ev(EventClass::Message, 1, "m2"));
  EXPECT_EQ(q.events(), 4u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"m1", "b1-1000", "b2", "m2"}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  q.push(ev(EventClass::Badge, 1, "again"));  // a taken badge is not replaced any more
  q.push(ev(EventClass::Badge, 1, "again2"));
  EXPECT_EQ(drain(q), (std::vector<std::string>{"again2"}));
}

TEST(OutboundQueue, MessagesAreNeverDroppedOverflowIsReported) {
  net::OutboundQueue q({3, 1 << 20, 2});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m")), Push::Queued);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m")), Push::Overflow);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m")), Push::Overflow);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m")), Push::Overflow);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m")), Push::HardOverflow);  // beyond 2 × 3
  EXPECT_EQ(q.events(), 7u);
}

TEST(OutboundQueue, ByteBoundCounts) {
  net::OutboundQueue q({100, 10, 4});
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "0123456789")), Push::Queued);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "x")), Push::Overflow);
  EXPECT_EQ(q.bytes(), 11u);
}

TEST(OutboundQueue, EphemeralEventsAreDroppedFirst) {
  net::OutboundQueue q({3, 1 << 20, 4});
  q.push(ev(EventClass::Ephemeral, 1, "t1"));
  q.push(ev(EventClass::Message, 1, "m1"));
  q.push(ev(EventClass::Ephemeral, 1, "t2"));
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m2")), Push::Queued);  // room made by dropping t1 (the oldest)
  EXPECT_EQ(q.events(), 3u);
  q.push(ev(EventClass::Message, 1, "m3"));  // and t2
  q.push(ev(EventClass::Message, 1, "m4"));  // now over the bound with messages only
  EXPECT_EQ(q.push(ev(EventClass::Ephemeral, 1, "t3")), Push::Dropped);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"m1", "m2", "m3", "m4"}));
}

TEST(OutboundQueue, UnderBackPressureTypingGoesFirstOldestFirstMessagesAndBadgesStay) {
  net::OutboundQueue q({4, 1 << 20, 4});
  EXPECT_EQ(q.push(ev(EventClass::Ephemeral, 1, "typing-a-start")), Push::Queued);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m1")), Push::Queued);
  EXPECT_EQ(q.push(ev(EventClass::Badge, 1, "b1", 1)), Push::Queued);
  EXPECT_EQ(q.push(ev(EventClass::Ephemeral, 1, "typing-a-stop")), Push::Queued);  // 4: at the bound
  // A message over the bound: the oldest typing event makes room, the newer one stays.
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m2")), Push::Queued);
  EXPECT_EQ(q.events(), 4u);
  // A typing event that would go over the bound makes room only by dropping older typing
  // events; with none older left, it is the one dropped.
  EXPECT_EQ(q.push(ev(EventClass::Ephemeral, 1, "typing-b-start")), Push::Queued);  // drops typing-a-stop
  EXPECT_EQ(q.events(), 4u);
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "m3")), Push::Queued);  // drops typing-b-start
  EXPECT_EQ(q.push(ev(EventClass::Ephemeral, 1, "typing-c")), Push::Dropped);
  EXPECT_EQ(q.push(ev(EventClass::Badge, 2, "b2", 1)), Push::Overflow);  // no typing left to drop
  EXPECT_EQ(drain(q), (std::vector<std::string>{"m1", "b1", "m2", "m3", "b2"}));
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutboundQueue, TypingIsDroppedFirstUnderTheByteBoundToo) {
  net::OutboundQueue q({100, 20, 4});
  q.push(ev(EventClass::Ephemeral, 1, "tttttttttt"));  // 10 bytes
  q.push(ev(EventClass::Message, 1, "mmmmmmmmmm"));    // 20: at the bound
  EXPECT_EQ(q.push(ev(EventClass::Message, 1, "nnnnn")), Push::Queued);
  EXPECT_EQ(q.bytes(), 15u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"mmmmmmmmmm", "nnnnn"}));
}

TEST(OutboundQueue, TakeHonoursTheBatchSizeAndOrder) {
  net::OutboundQueue q({100, 1 << 20, 4});
  for (int i = 0; i < 5; ++i) q.push(ev(EventClass::Message, 1, std::to_string(i)));
  std::vector<api::OutEventPtr> out;
  EXPECT_EQ(q.take(out, 2), 2u);
  EXPECT_EQ(out[0]->payload, "0");
  EXPECT_EQ(out[1]->payload, "1");
  EXPECT_EQ(q.events(), 3u);
  q.clear();
  EXPECT_TRUE(q.empty());
}
