#include "net/hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <thread>

using namespace parley;

namespace {

struct FakeConn : net::WsConnection {
  FakeConn(bool sidebar, Id room) : sidebar(sidebar), room(room) {}
  void deliver(const api::OutEventPtr& ev) override { got.push_back(ev->payload); }
  void kick(std::uint16_t code, std::string reason) override { kicks.emplace_back(code, std::move(reason)); }
  bool follows(Id r) const override { return sidebar || r == room; }
  bool is_chatroom_of(Id r) const override { return !sidebar && r == room; }
  bool sidebar;
  Id room;
  std::vector<std::string> got;
  std::vector<std::pair<std::uint16_t, std::string>> kicks;
};

api::OutEventPtr event(Id room, std::string payload) {
  auto ev = std::make_shared<api::OutEvent>();
  ev->room = room;
  ev->payload = std::move(payload);
  return ev;
}

}  // namespace

TEST(Hub, DeliversToFollowersOfTheRoomOnly) {
  boost::asio::io_context ioc;
  net::Hub hub(ioc);
  auto side = std::make_shared<FakeConn>(true, 0);
  auto room1 = std::make_shared<FakeConn>(false, 1);
  auto room2 = std::make_shared<FakeConn>(false, 2);
  auto other = std::make_shared<FakeConn>(true, 0);
  hub.add(7, side);
  hub.add(7, room1);
  hub.add(7, room2);
  hub.add(8, other);
  hub.deliver({7}, event(1, "e1"));
  EXPECT_EQ(side->got, std::vector<std::string>{"e1"});
  EXPECT_EQ(room1->got, std::vector<std::string>{"e1"});
  EXPECT_TRUE(room2->got.empty());
  EXPECT_TRUE(other->got.empty());  // user 8 was not an addressee
  EXPECT_TRUE(hub.online(7));
  EXPECT_EQ(hub.size(), 4u);
  hub.remove(7, side.get());
  hub.remove(7, room1.get());
  hub.remove(7, room2.get());
  EXPECT_FALSE(hub.online(7));
  EXPECT_EQ(hub.size(), 1u);
}

TEST(Hub, RevokeClosesOnlyThatRoomsChatroomSockets) {
  boost::asio::io_context ioc;
  net::Hub hub(ioc);
  auto side = std::make_shared<FakeConn>(true, 0);
  auto room1 = std::make_shared<FakeConn>(false, 1);
  auto room2 = std::make_shared<FakeConn>(false, 2);
  hub.add(7, side);
  hub.add(7, room1);
  hub.add(7, room2);
  hub.revoke(7, 1);
  ASSERT_EQ(room1->kicks.size(), 1u);
  EXPECT_EQ(room1->kicks[0].first, 1008);
  EXPECT_EQ(room1->kicks[0].second, "not a member");
  EXPECT_TRUE(side->kicks.empty());
  EXPECT_TRUE(room2->kicks.empty());
}

TEST(Hub, RunInOrderIsBoundedAndOrdered) {
  boost::asio::io_context ioc;
  net::Hub hub(ioc, 2);
  std::vector<int> ran;
  hub.run_in_order([&] { ran.push_back(1); });
  hub.run_in_order([&] { ran.push_back(2); });
  std::atomic<bool> third_queued{false};
  std::thread producer([&] {
    hub.run_in_order([&] { ran.push_back(3); });  // blocks: two tasks pending
    third_queued = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(third_queued.load());
  while (!third_queued) {
    ioc.restart();  // poll() leaves the context stopped once it runs out of work
    ioc.poll();
  }
  producer.join();
  ioc.restart();
  ioc.poll();
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(Hub, ShutdownUnblocksAndDrops) {
  boost::asio::io_context ioc;
  net::Hub hub(ioc, 1);
  int ran = 0;
  hub.run_in_order([&] { ++ran; });
  std::thread producer([&] { hub.run_in_order([&] { ++ran; }); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  hub.shutdown();
  producer.join();
  ioc.restart();
  ioc.poll();
  EXPECT_EQ(ran, 1);
}
