#include "bus/bus.h"

#include <gtest/gtest.h>

#include "chat/service.h"
#include "storage/sqlite/sqlite_store.h"

using namespace parley;

TEST(LocalBus, HandsEveryCommittedEventOfTheDomainToTheReceiver) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  bus::LocalBus bus;
  std::vector<chat::EventPtr> got;
  bus.subscribe([&](const chat::EventPtr& e) { got.push_back(e); });
  chat::ChatService chat{store, &bus};
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id room = chat.create_group(a, "r", {b}).room.id;
  auto sent = chat.send(b, room, "hi", {});
  chat.read_one(a, sent.message.id);
  ASSERT_EQ(got.size(), 6u);  // two joins, the new room, the message, the delivery the read implies, the read
  EXPECT_TRUE(std::holds_alternative<chat::RoomUpdated>(*got[2]));
  EXPECT_TRUE(std::holds_alternative<chat::MessageCreated>(*got[3]));
  const auto& delivered = std::get<chat::MessageDelivered>(*got[4]);
  EXPECT_EQ(delivered.user, a);
  EXPECT_EQ(delivered.up_to_seq, 1);
  const auto& read = std::get<chat::MessageRead>(*got[5]);
  EXPECT_EQ(read.reader, a);
  EXPECT_EQ(read.newest_read.seq, 1);
  EXPECT_EQ(read.last_seq, 1);
  EXPECT_TRUE(bus.healthy());
}

TEST(LocalBus, WithoutAReceiverPublishingIsHarmless) {
  bus::LocalBus bus;
  bus.publish(std::make_shared<const chat::Event>(chat::MemberLeft{1, 2, 3}));
  bus.watch_user(1);
  bus.unwatch_user(1);
}
