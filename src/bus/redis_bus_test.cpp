#include "bus/redis_bus.h"

#include <gtest/gtest.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "bus/event_codec.h"
#include "bus/redis_test_server.h"

using namespace parley;
using namespace std::chrono_literals;

TEST(RedisUrl, ParsesHostAndPortAndRefusesTheRest) {
  auto o = bus::parse_redis_url("redis://127.0.0.1:6390", nullptr);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 6390);
  o = bus::parse_redis_url("redis://cache.internal/", nullptr);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6379);
  for (const char* bad : {"redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:x", "redis://u@h:1",
                          "redis://h:1/2", "http://h:1", "rediss://h:1"}) {
    std::string err;
    EXPECT_FALSE(bus::parse_redis_url(bad, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

namespace {
using bus::testing::RedisServer;
using bus::testing::redis_installed;

struct Receiver {
  std::mutex mu;
  std::vector<chat::EventPtr> events;
  std::vector<std::pair<bus::Bus::Link, Id>> links;
  void attach(bus::RedisBus& b) {
    b.subscribe([this](const chat::EventPtr& e) {
      std::lock_guard g(mu);
      events.push_back(e);
    });
    b.on_link([this](bus::Bus::Link l, Id u) {
      std::lock_guard g(mu);
      links.emplace_back(l, u);
    });
  }
  std::size_t count() {
    std::lock_guard g(mu);
    return events.size();
  }
  bool saw(bus::Bus::Link l, Id u = 0) {
    std::lock_guard g(mu);
    for (const auto& [k, v] : links)
      if (k == l && v == u) return true;
    return false;
  }
};

template <class F>
bool eventually(F f, std::chrono::milliseconds within = 5000ms) {
  auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

bus::RedisOptions options(int port) {
  bus::RedisOptions o;
  o.port = port;
  o.prefix = "t" + std::to_string(::getpid()) + ":";
  return o;
}

chat::EventPtr message_for(std::vector<Id> members, chat::Seq seq, Id room = 42) {
  chat::MessageCreated m;
  m.message = chat::Message{100 + seq, room, members.front(), "hi", seq, 1, std::nullopt};
  for (Id u : members) m.members.push_back({u, 0});
  return std::make_shared<const chat::Event>(m);
}

}  // namespace

TEST(RedisBus, CarriesEventsToWatchingInstancesOnceAndSkipsItsOwnEcho) {
  if (!redis_installed()) GTEST_SKIP() << "redis-server is not installed";
  RedisServer redis;
  const auto prefix = options(redis.port).prefix;
  bus::RedisBus a(options(redis.port)), b(options(redis.port));
  Receiver ra, rb;
  ra.attach(a);
  rb.attach(b);
  a.watch_room(42);
  b.watch_room(42);
  a.start();
  b.start();
  ASSERT_TRUE(eventually([&] { return a.healthy() && b.healthy(); }));
  EXPECT_TRUE(rb.saw(bus::Bus::Link::Restored));
  EXPECT_EQ(a.problem(), "");

  a.publish(message_for({7, 9}, 1));
  EXPECT_EQ(ra.count(), 1u);  // delivered locally at once
  ASSERT_TRUE(eventually([&] { return rb.count() == 1; }));
  EXPECT_EQ(ra.count(), 1u);  // its own echo skipped
  EXPECT_TRUE(eventually([&] { return a.stats().own == 1; }));
  EXPECT_TRUE(eventually([&] { return a.stats().published == 1; }));  // one PUBLISH, whatever the number of members
  {
    std::lock_guard g(rb.mu);
    const auto& got = std::get<chat::MessageCreated>(*rb.events[0]);
    EXPECT_EQ(got.message.seq, 1);
    EXPECT_EQ(got.members.size(), 2u);
  }
  // The same payload twice (a batch sent again after a broken link): handed over once.
  auto copy = bus::encode(*message_for({7}, 2), 77, 1);
  redis.publish_raw(prefix + "r:42", copy);
  redis.publish_raw(prefix + "r:42", copy);
  ASSERT_TRUE(eventually([&] { return rb.count() == 2; }));
  ASSERT_TRUE(eventually([&] { return b.stats().duplicates == 1; }));
  EXPECT_EQ(rb.count(), 2u);
  ASSERT_TRUE(eventually([&] { return ra.count() == 2; }));  // a watches room 42 too

  // A room nobody on b watches does not reach b.
  a.publish(message_for({7}, 1, 43));
  // Revocations reach every instance, watching or not.
  b.publish(std::make_shared<const chat::Event>(chat::TokensRevoked{12345, 2}));
  ASSERT_TRUE(eventually([&] { return ra.count() == 4; }));  // its own room 43 message, then the revocation
  {
    std::lock_guard g(ra.mu);
    EXPECT_EQ(std::get<chat::TokensRevoked>(*ra.events[3]).user, 12345);
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rb.count(), 3u);  // 1, 2 and its own revocation: nothing of room 43

  // A user watched later: Watching once the subscription is in place, then their joins and
  // leaves come (on the user's channel, not the room's).
  a.watch_user(555);
  ASSERT_TRUE(eventually([&] { return ra.saw(bus::Bus::Link::Watching, 555); }));
  b.publish(std::make_shared<const chat::Event>(chat::MemberJoined{99, 555, 3, 0}));
  ASSERT_TRUE(eventually([&] { return ra.count() == 5; }));
  // A room watched later: WatchingRoom, then its messages come.
  a.watch_room(99);
  ASSERT_TRUE(eventually([&] { return ra.saw(bus::Bus::Link::WatchingRoom, 99); }));
  EXPECT_FALSE(ra.saw(bus::Bus::Link::Watching, 99));
  b.publish(message_for({555}, 4, 99));
  ASSERT_TRUE(eventually([&] { return ra.count() == 6; }));
  // Unwatched (counted: watched twice, unwatched once → still watched; then gone).
  a.watch_room(99);
  a.unwatch_room(99);
  b.publish(message_for({555}, 5, 99));
  ASSERT_TRUE(eventually([&] { return ra.count() == 7; }));
  a.unwatch_room(99);
  std::this_thread::sleep_for(200ms);  // the UNSUBSCRIBE is in place
  b.publish(message_for({555}, 6, 99));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ra.count(), 7u);

  // A payload not written by the codec is dropped with a log line; the bus goes on.
  redis.publish_raw(prefix + "r:42", "{\"v\":1,\"garbage\":true}");
  redis.publish_raw(prefix + "r:42", std::string("\xff\xfe\x00", 3));
  ASSERT_TRUE(eventually([&] { return b.stats().malformed == 2; }));
  std::size_t before = rb.count();
  a.publish(message_for({9}, 7));
  ASSERT_TRUE(eventually([&] { return rb.count() == before + 1; }));
  EXPECT_TRUE(b.healthy());
}

// room_updated's channels (bus/channels.h): an add on the room's channel and the new member's,
// once per instance however many of them it watches; a new room on the broadcast channel.
TEST(RedisBus, ARoomUpdateReachesTheRoomsAndTheNewMembersInstancesOnceEach) {
  if (!redis_installed()) GTEST_SKIP() << "redis-server is not installed";
  RedisServer redis;
  bus::RedisBus a(options(redis.port)), both(options(redis.port)), user(options(redis.port)), none(options(redis.port));
  Receiver ra, rboth, ruser, rnone;
  ra.attach(a);
  rboth.attach(both);
  ruser.attach(user);
  rnone.attach(none);
  both.watch_room(42);
  both.watch_user(9);
  user.watch_user(9);
  for (auto* b : {&a, &both, &user, &none}) b->start();
  ASSERT_TRUE(eventually([&] {
    // Restored: connected, with every channel watched before start() subscribed.
    return rboth.saw(bus::Bus::Link::Restored) && ruser.saw(bus::Bus::Link::Restored) &&
           rnone.saw(bus::Bus::Link::Restored) && a.healthy();
  }));
  auto room_updated = [](std::vector<Id> joined, bool created) {
    return std::make_shared<const chat::Event>(chat::RoomUpdated{
        42, std::string("r"), chat::RoomType::Group, {{7, "alice", 1}, {9, "bob", 2}}, std::move(joined), created, 5});
  };
  a.publish(room_updated({9}, false));  // bob (9) added
  a.publish(room_updated({}, false));   // a change that adds nobody: the room's channel only
  a.publish(room_updated({7, 9}, true));  // a new room: every instance
  // One publisher connection, one subscriber connection each: Redis keeps the order, so once
  // the new room's event is in, every copy of the others has come (or never will).
  ASSERT_TRUE(eventually([&] { return rboth.count() == 3 && ruser.count() == 2 && rnone.count() == 1; }));
  EXPECT_TRUE(eventually([&] { return a.stats().published == 4; }));  // r:42 + u:9, r:42, all
  EXPECT_EQ(both.stats().duplicates, 1u);  // the add's copy on the second channel, dropped
  EXPECT_EQ(rboth.count(), 3u);
  {
    std::lock_guard g(ruser.mu);
    EXPECT_EQ(std::get<chat::RoomUpdated>(*ruser.events[0]).joined, std::vector<Id>{9});
    EXPECT_TRUE(std::get<chat::RoomUpdated>(*ruser.events[1]).created);
  }
  {
    std::lock_guard g(rnone.mu);
    EXPECT_TRUE(std::get<chat::RoomUpdated>(*rnone.events[0]).created);
  }
  EXPECT_EQ(ra.count(), 3u);  // its own, locally, once each
}

TEST(RedisBus, AnOutageIsReportedAndTheBusComesBackAndResubscribes) {
  if (!redis_installed()) GTEST_SKIP() << "redis-server is not installed";
  RedisServer redis;
  auto o = options(redis.port);
  o.max_queued_events = 5;
  bus::RedisBus a(o), b(o);
  Receiver ra, rb;
  ra.attach(a);
  rb.attach(b);
  b.watch_room(42);
  a.start();
  b.start();
  ASSERT_TRUE(eventually([&] { return a.healthy() && b.healthy(); }));

  redis.stop();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return !a.healthy() && !b.healthy(); }, 5000ms));
  auto noticed = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(noticed, 5s);
  EXPECT_TRUE(eventually([&] { return rb.saw(bus::Bus::Link::Lost); }));
  EXPECT_NE(b.problem().find("bus: subscription"), std::string::npos) << b.problem();

  // Publishing while Redis is away: delivered locally, queued up to the bound, oldest dropped.
  for (int i = 1; i <= 20; ++i) a.publish(message_for({9}, i));
  EXPECT_EQ(ra.count(), 20u);
  EXPECT_EQ(a.stats().dropped, 15u);
  // Typing is delivered locally but never queued while the link is down: no stored event's
  // place is taken by it, and nothing stale is sent when the link returns.
  a.publish(std::make_shared<const chat::Event>(chat::Typing{42, 9, true, 6000}));
  EXPECT_EQ(ra.count(), 21u);
  EXPECT_EQ(a.stats().dropped, 15u);
  EXPECT_EQ(a.stats().ephemeral_dropped, 1u);

  redis.start();
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return a.healthy() && b.healthy(); }, 5000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  {
    std::lock_guard g(rb.mu);
    int restored = 0;
    for (const auto& [l, u] : rb.links) restored += l == bus::Bus::Link::Restored;
    EXPECT_EQ(restored, 2);  // the start and the return
  }
  // Resubscribed: a new message of the watched room arrives.
  std::size_t before = rb.count();
  a.publish(message_for({9}, 100));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard g(rb.mu);
    for (std::size_t i = before; i < rb.events.size(); ++i)
      if (std::get<chat::MessageCreated>(*rb.events[i]).message.seq == 100) return true;
    return false;
  }));
}
