// The hub as the instance's receiver: per-room order of out-of-order arrivals, gap fills
// from storage, badges from the events, echo rules and the connection index.
#include "net/hub.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "auth/jwt.h"
#include "common/time.h"
#include "storage/sqlite/fault_vfs_test.h"
#include "storage/sqlite/sqlite_store.h"

using namespace parley;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

struct FakeConn : net::WsConnection {
  explicit FakeConn(std::string id) : id(std::move(id)) {}
  void deliver(const api::OutEventPtr& ev) override {
    std::lock_guard g(mu);
    got.push_back(json::parse(ev->payload).as_object());
    raw.push_back(ev);
  }
  std::vector<api::OutEventPtr> raw_of(std::string_view type) {
    std::lock_guard g(mu);
    std::vector<api::OutEventPtr> out;
    for (auto& ev : raw)
      if (json::parse(ev->payload).at("type").as_string() == type) out.push_back(ev);
    return out;
  }
  void deliver_snapshot(std::vector<api::OutEventPtr> badges) override {
    std::lock_guard g(mu);
    snapshots.push_back(badges.size());
    for (auto& b : badges) got.push_back(json::parse(b->payload).as_object());
  }
  void kick(std::uint16_t code, std::string reason) override {
    std::lock_guard g(mu);
    kicks.push_back(code);
    kick_reasons.push_back(std::move(reason));
  }
  const std::string& connection_id() const override { return id; }
  std::optional<std::int64_t> token_version() const override { return version; }
  std::vector<std::string> reasons() {
    std::lock_guard g(mu);
    return kick_reasons;
  }
  std::vector<json::object> of(std::string_view type) {
    std::lock_guard g(mu);
    std::vector<json::object> out;
    for (auto& o : got)
      if (o.at("type").as_string() == type) out.push_back(o.at("data").as_object());
    return out;
  }
  std::size_t snapshot_count() {
    std::lock_guard g(mu);
    return snapshots.size();
  }
  std::vector<std::uint16_t> kick_codes() {
    std::lock_guard g(mu);
    return kicks;
  }
  std::vector<std::int64_t> seqs() {
    std::vector<std::int64_t> s;
    for (auto& d : of("new_message")) s.push_back(d.at("seq").as_int64());
    return s;
  }
  std::string id;
  std::mutex mu;
  std::vector<json::object> got;
  std::vector<api::OutEventPtr> raw;  // what deliver() got, as shared
  std::vector<std::size_t> snapshots;
  std::vector<std::uint16_t> kicks;
  std::vector<std::string> kick_reasons;
  std::optional<std::int64_t> version;  // set before registering
};

struct HubTest : ::testing::Test {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 2, 256, false, {}}};
  chat::ChatService chat{store};  // no publisher: the tests hand events to the hub themselves
  auth::JwtCodec jwt{std::string(32, 'k'), 3600, store.database_id()};
  api::KnownUsers known{chat};
  api::WsGate gate{chat, jwt, known, api::WsGateOptions{}};
  api::Metrics metrics;
  api::LoadGauge load{100};
  api::WsService svc{chat, gate, metrics, load};
  boost::asio::io_context ioc;
  boost::asio::thread_pool pool{2};
  net::HubOptions opts = [] {
    net::HubOptions o;
    o.gap_hold = 30ms;
    return o;
  }();
  std::unique_ptr<net::Hub> hub = std::make_unique<net::Hub>(ioc, pool, svc, opts);
  Id alice = chat.create_user("alice", "h").id;
  Id bob = chat.create_user("bob", "h").id;
  Id room = chat.create_group(alice, "r", {bob}).room.id;

  ~HubTest() override {
    hub->shutdown();
    pool.join();
  }
  // Runs the hub's strand until cond holds (or 3 s pass).
  template <class F>
  bool until(F cond) {
    for (int i = 0; i < 600 && !cond(); ++i) {
      ioc.restart();
      if (ioc.poll() == 0) std::this_thread::sleep_for(5ms);  // the pool's work comes back later
    }
    return cond();
  }
  void settle() {  // lets whatever is in flight arrive
    for (int i = 0; i < 20; ++i) {
      ioc.restart();
      ioc.poll();
      std::this_thread::sleep_for(5ms);
    }
  }
  chat::EventPtr created(const chat::Message& m, std::string origin = {}) {
    chat::MessageCreated e;
    e.message = m;
    e.origin = std::move(origin);
    for (Id u : {alice, bob}) e.members.push_back({u, u == m.sender_id ? m.seq : 0});
    return std::make_shared<const chat::Event>(std::move(e));
  }
  std::shared_ptr<FakeConn> sidebar(Id user, std::string id) {
    auto c = std::make_shared<FakeConn>(std::move(id));
    hub->add(user, 0, c);
    EXPECT_TRUE(until([&] { return c->snapshot_count() > 0; }));
    return c;
  }
};

}  // namespace

TEST_F(HubTest, OutOfOrderArrivalsReachEachConnectionInSeqOrderOnce) {
  auto b = sidebar(bob, "b1");
  std::vector<chat::Message> m;
  for (int i = 0; i < 4; ++i) m.push_back(chat.send(alice, room, "m" + std::to_string(i), {}).message);
  // Published from parallel commits: 2 and 4 overtake 1 and 3, and 3 comes twice.
  for (int i : {1, 0, 3, 2, 2}) hub->on_event(created(m[i]));
  ASSERT_TRUE(until([&] { return b->seqs().size() >= 4; }));
  EXPECT_EQ(b->seqs(), (std::vector<std::int64_t>{1, 2, 3, 4}));
  auto badges = b->of("unread_count_update");
  ASSERT_FALSE(badges.empty());
  EXPECT_EQ(badges.back().at("unread_count").as_int64(), 4);
  EXPECT_EQ(badges.back().at("total_unread").as_int64(), 4);
}

// A message to many members is rendered once: every receiver gets the same shared frame of
// new_message, and members whose badge is the same state the same shared badge; a member
// whose badge differs gets its own.
TEST_F(HubTest, OneMessageIsRenderedOnceAndItsEqualBadgesShareOneFrame) {
  std::vector<Id> readers;
  for (int i = 0; i < 5; ++i) readers.push_back(chat.create_user("reader" + std::to_string(i), "h").id);
  std::vector<Id> members = readers;
  members.push_back(bob);
  Id big = chat.create_group(alice, "big", members).room.id;
  std::vector<std::shared_ptr<FakeConn>> conns;
  for (std::size_t i = 0; i < readers.size(); ++i) conns.push_back(sidebar(readers[i], "r" + std::to_string(i)));
  auto b = sidebar(bob, "b1");
  auto m1 = chat.send(alice, big, "first", {}).message;
  auto m2 = chat.send(alice, big, "second", {}).message;
  auto event = [&](const chat::Message& m, Id bob_read) {
    chat::MessageCreated e;
    e.message = m;
    e.members.push_back({alice, m.seq});
    for (Id u : readers) e.members.push_back({u, 0});
    e.members.push_back({bob, bob_read});
    return std::make_shared<const chat::Event>(std::move(e));
  };
  hub->on_event(event(m1, 0));
  hub->on_event(event(m2, m1.seq));  // bob has read the first one: his badge is 1, the others' 2
  ASSERT_TRUE(until([&] {
    for (auto& c : conns)
      if (c->raw_of("new_message").size() < 2 || c->raw_of("unread_count_update").size() < 2) return false;
    return b->raw_of("new_message").size() >= 2 && b->raw_of("unread_count_update").size() >= 2;
  }));
  for (int k = 0; k < 2; ++k) {
    auto msg = conns[0]->raw_of("new_message")[k];
    auto badge = conns[0]->raw_of("unread_count_update")[k];
    for (auto& c : conns) {
      EXPECT_EQ(c->raw_of("new_message")[k].get(), msg.get());
      EXPECT_EQ(c->raw_of("unread_count_update")[k].get(), badge.get());
    }
    EXPECT_EQ(b->raw_of("new_message")[k].get(), msg.get());
  }
  EXPECT_EQ(b->raw_of("unread_count_update")[0].get(), conns[0]->raw_of("unread_count_update")[0].get());
  EXPECT_NE(b->raw_of("unread_count_update")[1].get(), conns[0]->raw_of("unread_count_update")[1].get());
  EXPECT_EQ(conns[3]->of("unread_count_update").back().at("unread_count").as_int64(), 2);
  EXPECT_EQ(b->of("unread_count_update").back().at("unread_count").as_int64(), 1);
}

TEST_F(HubTest, AGapIsFilledFromStorageAfterTheHold) {
  auto b = sidebar(bob, "b1");
  std::vector<chat::Message> m;
  for (int i = 0; i < 3; ++i) m.push_back(chat.send(alice, room, "m" + std::to_string(i), {}).message);
  hub->on_event(created(m[0]));
  hub->on_event(created(m[2]));  // the event of seq 2 is lost on the way
  ASSERT_TRUE(until([&] { return b->seqs().size() >= 3; }));
  EXPECT_EQ(b->seqs(), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(b->of("new_message")[1].at("content").as_string(), "m1");  // read from storage
  hub->on_event(created(m[1]));  // the lost one turns up after all: not sent twice
  settle();
  EXPECT_EQ(b->seqs().size(), 3u);
}

TEST_F(HubTest, EchoGoesToTheSendersOtherConnectionsNeverToTheSendingOne) {
  auto a1 = sidebar(alice, "a1");
  auto a2 = sidebar(alice, "a2");
  auto ar = std::make_shared<FakeConn>("a3");
  hub->add(alice, room, ar);
  hub->anchor(room, 0);
  auto b = sidebar(bob, "b1");
  auto msg = chat.send(alice, room, "hi", std::string("x"), "a1").message;
  hub->on_event(created(msg, "a1"));
  ASSERT_TRUE(until([&] { return !b->of("new_message").empty() && !ar->of("new_message").empty(); }));
  EXPECT_TRUE(a1->of("new_message").empty());
  ASSERT_EQ(a2->of("new_message").size(), 1u);
  EXPECT_TRUE(a2->of("new_message")[0].at("echo").as_bool());
  EXPECT_TRUE(ar->of("new_message")[0].at("echo").as_bool());
  EXPECT_FALSE(b->of("new_message")[0].contains("echo"));
  // The sender's badge did not change (0 before and after): no update beyond the snapshot's.
  settle();
  EXPECT_EQ(a2->of("unread_count_update").size(), 1u);
}

TEST_F(HubTest, ChatroomSocketsGetOnlyTheirRoomAndBadgeTotalsSpanRooms) {
  Id other = chat.create_group(alice, "o", {bob}).room.id;
  auto b = sidebar(bob, "b1");
  auto br = std::make_shared<FakeConn>("b2");
  hub->add(bob, other, br);
  hub->anchor(other, 0);
  auto m1 = chat.send(alice, room, "in room", {}).message;
  auto m2 = chat.send(alice, other, "in other", {}).message;
  hub->on_event(created(m1));
  hub->on_event(created(m2));
  ASSERT_TRUE(until([&] { return b->seqs().size() >= 2 && !br->seqs().empty(); }));
  ASSERT_EQ(br->of("new_message").size(), 1u);
  EXPECT_EQ(br->of("new_message")[0].at("content").as_string(), "in other");
  auto badges = b->of("unread_count_update");
  EXPECT_EQ(badges.back().at("total_unread").as_int64(), 2);  // one unread in each room
}

TEST_F(HubTest, ALeaveClosesThatRoomsChatroomSocketsOnly) {
  auto br = std::make_shared<FakeConn>("b2");
  hub->add(bob, room, br);
  auto b = sidebar(bob, "b1");
  chat.remove_member(bob, room, bob);
  hub->on_event(std::make_shared<const chat::Event>(chat::MemberLeft{room, bob, 0}));
  ASSERT_TRUE(until([&] { return !br->kick_codes().empty(); }));
  EXPECT_EQ(br->kick_codes(), std::vector<std::uint16_t>{1008});
  EXPECT_TRUE(b->kick_codes().empty());
  EXPECT_EQ(hub->size(), 2u);
  hub->remove(bob, room, br.get());
  hub->remove(bob, 0, b.get());
  EXPECT_EQ(hub->size(), 0u);
  EXPECT_FALSE(hub->online(bob));
}

TEST_F(HubTest, RoomUpdatedReachesEveryMemberHereAndRoomLeftOnlyTheLeaverNewestChangeLast) {
  Id carol = chat.create_user("carol", "h").id;
  Id dave = chat.create_user("dave", "h").id;  // never a member of room
  Id other = chat.create_group(alice, "o", {bob}).room.id;
  auto a = sidebar(alice, "a1");
  auto ar = std::make_shared<FakeConn>("a2");  // alice's socket of room
  hub->add(alice, room, ar);
  auto b = sidebar(bob, "b1");
  auto bo = std::make_shared<FakeConn>("b2");  // bob's socket of another room
  hub->add(bob, other, bo);
  auto c = sidebar(carol, "c1");
  auto d = sidebar(dave, "d1");
  auto user = [&](Id id) { return chat.get_user(id); };
  auto updated = [&](Id r, std::vector<chat::User> members, std::vector<Id> joined, TimeMs at) {
    return std::make_shared<const chat::Event>(
        chat::RoomUpdated{r, std::string("r"), chat::RoomType::Group, std::move(members), std::move(joined), false, at});
  };
  // A marker after the events: the hub handles events in order, so once every sidebar has it,
  // whatever came before has been delivered (or never will be).
  Id marker = 999999;
  auto all_marked = [&] {
    for (auto* s : {a.get(), b.get(), c.get(), d.get()}) {
      bool seen = false;
      for (auto& e : s->of("room_updated"))
        if (e.at("room_id").as_string() == format_id(marker)) seen = true;
      if (!seen) return false;
    }
    return true;
  };
  auto of_room = [&](FakeConn& conn, std::string_view type) {
    std::vector<json::object> out;
    for (auto& e : conn.of(type))
      if (e.at("room_id").as_string() == format_id(room)) out.push_back(e);
    return out;
  };
  // carol is added: alice, bob and carol hear of it; dave and bob's socket of the other room not.
  hub->on_event(std::make_shared<const chat::Event>(chat::MemberJoined{room, carol, 0, 0}));
  auto add = updated(room, {user(alice), user(bob), user(carol)}, {carol}, 10);
  hub->on_event(add);
  // bob is removed: MemberLeft (to him) and the room as alice and carol see it now.
  hub->on_event(std::make_shared<const chat::Event>(chat::MemberLeft{room, bob, 0, 20}));
  hub->on_event(updated(room, {user(alice), user(carol)}, {}, 20));
  // An older change arriving late (as over two bus channels) is news to nobody: it would put
  // bob back on the others' lists, and on his own after his room_left.
  hub->on_event(add);
  hub->on_event(updated(marker, {user(alice), user(bob), user(carol), user(dave)}, {}, 30));
  ASSERT_TRUE(until(all_marked));
  auto names = [](const json::object& e) {
    std::vector<std::string> out;
    for (auto& m : e.at("members").as_array()) out.emplace_back(m.at("username").as_string());
    return out;
  };
  for (auto* s : {a.get(), ar.get(), c.get()}) {
    auto got = of_room(*s, "room_updated");
    ASSERT_EQ(got.size(), 2u) << s->id;
    EXPECT_EQ(names(got[0]), (std::vector<std::string>{"alice", "bob", "carol"}));
    EXPECT_EQ(names(got[1]), (std::vector<std::string>{"alice", "carol"}));
    EXPECT_EQ(got[0].at("name").as_string(), "r");
    EXPECT_EQ(got[0].at("type").as_string(), "group");
    EXPECT_EQ(got[0].at("members").as_array()[0].at("id").as_string(), format_id(alice));
    EXPECT_TRUE(got[0].at("members").as_array()[0].as_object().contains("created_at"));
    EXPECT_TRUE(of_room(*s, "room_left").empty()) << s->id;
  }
  // bob: the add (while a member), then room_left, not the room as the others see it.
  auto bu = of_room(*b, "room_updated");
  ASSERT_EQ(bu.size(), 1u);
  EXPECT_EQ(names(bu[0]), (std::vector<std::string>{"alice", "bob", "carol"}));
  ASSERT_EQ(of_room(*b, "room_left").size(), 1u);
  EXPECT_EQ(b->of("room_left")[0].size(), 1u);  // {room_id} only
  EXPECT_TRUE(bo->of("room_updated").empty());
  EXPECT_TRUE(bo->of("room_left").empty());
  EXPECT_TRUE(of_room(*d, "room_updated").empty());
  EXPECT_TRUE(d->of("room_left").empty());
}

TEST_F(HubTest, CloseAllKicksEveryoneAndRefusesLateRegistrations) {
  auto b = sidebar(bob, "b1");
  hub->close_all(1001, "bye");
  ASSERT_TRUE(until([&] { return !b->kick_codes().empty(); }));
  EXPECT_EQ(b->kick_codes(), std::vector<std::uint16_t>{1001});
  EXPECT_FALSE(hub->add(alice, 0, std::make_shared<FakeConn>("late")));
}

TEST_F(HubTest, ARevocationClosesTheUsersOlderSocketsOn1008AndNoOneElses) {
  auto at = [](std::string id, std::optional<std::int64_t> v) {
    auto c = std::make_shared<FakeConn>(std::move(id));
    c->version = v;
    return c;
  };
  auto old_sidebar = at("a1", 0), old_room = at("a2", 0), insecure = at("a3", std::nullopt);
  auto fresh = at("a4", 1), bob_sidebar = at("b1", 0);
  hub->add(alice, 0, old_sidebar);
  hub->add(alice, room, old_room);
  hub->add(alice, 0, insecure);
  hub->add(alice, room, fresh);  // opened with a token of the new version, before the event came
  hub->add(bob, 0, bob_sidebar);
  hub->on_event(std::make_shared<const chat::Event>(chat::TokensRevoked{alice, 1}));
  ASSERT_TRUE(until([&] { return !old_sidebar->kick_codes().empty() && !old_room->kick_codes().empty(); }));
  settle();
  for (auto* c : {old_sidebar.get(), old_room.get(), insecure.get()}) {
    EXPECT_EQ(c->kick_codes(), std::vector<std::uint16_t>{1008}) << c->id;
    EXPECT_EQ(c->reasons(), std::vector<std::string>{"token revoked"}) << c->id;
  }
  EXPECT_TRUE(fresh->kick_codes().empty());
  EXPECT_TRUE(bob_sidebar->kick_codes().empty());
}

TEST_F(HubTest, AResyncRepairsWhatLostEventsLeftWrong) {
  // As after a bus outage: nothing below reaches the hub as an event.
  Id other = chat.create_group(alice, "o", {bob}).room.id;
  auto b = sidebar(bob, "b1");
  auto br = std::make_shared<FakeConn>("b2");
  hub->add(bob, room, br);
  hub->anchor(room, 0);
  auto bo = std::make_shared<FakeConn>("b3");
  hub->add(bob, other, bo);
  hub->anchor(other, 0);
  auto a = std::make_shared<FakeConn>("a1");
  a->version = 0;
  hub->add(alice, 0, a);
  ASSERT_TRUE(until([&] { return a->snapshot_count() > 0; }));
  for (int i = 0; i < 3; ++i) chat.send(alice, room, "lost " + std::to_string(i), {});
  chat.send(alice, other, "lost in other", {});
  chat.remove_member(bob, other, bob);
  chat.revoke_tokens(alice);
  settle();
  ASSERT_TRUE(b->seqs().empty());

  hub->resync();
  ASSERT_TRUE(until([&] { return b->seqs().size() >= 3 && br->seqs().size() >= 3 && !a->kick_codes().empty(); }));
  settle();
  EXPECT_EQ(br->seqs(), (std::vector<std::int64_t>{1, 2, 3}));  // filled from storage, in order
  EXPECT_EQ(b->seqs(), (std::vector<std::int64_t>{1, 2, 3}));   // not the left room's message
  auto badges = b->of("unread_count_update");
  ASSERT_FALSE(badges.empty());
  EXPECT_EQ(badges.back().at("room_id").as_string(), format_id(room));
  EXPECT_EQ(badges.back().at("unread_count").as_int64(), 3);
  EXPECT_EQ(badges.back().at("total_unread").as_int64(), 3);  // the left room no longer counts
  EXPECT_EQ(bo->reasons(), std::vector<std::string>{"not a member"});
  EXPECT_TRUE(br->kick_codes().empty());
  EXPECT_EQ(a->reasons(), std::vector<std::string>{"token revoked"});
  // The events turn up after all: nothing twice.
  hub->resync(bob);
  settle();
  EXPECT_EQ(br->seqs().size(), 3u);
}

TEST_F(HubTest, RoomInterestFollowsTheRoomsOfConnectedUsersAndANewSubscriptionIsCaughtUp) {
  std::mutex mu;
  std::vector<std::pair<Id, bool>> calls;
  auto taken = [&] {
    std::lock_guard g(mu);
    auto out = calls;
    calls.clear();
    return out;
  };
  net::HubOptions o = opts;
  o.room_interest = [&](Id r, bool watch) {
    std::lock_guard g(mu);
    calls.emplace_back(r, watch);
  };
  hub->shutdown();
  hub = std::make_unique<net::Hub>(ioc, pool, svc, o);
  using Calls = std::vector<std::pair<Id, bool>>;

  // A chatroom socket brings its room at once (before any storage read).
  auto br = std::make_shared<FakeConn>("b2");
  hub->add(bob, room, br);
  EXPECT_EQ(taken(), (Calls{{room, true}}));
  auto b = sidebar(bob, "b1");   // bob's tracker loaded: the same room, nothing new
  auto a = sidebar(alice, "a1");  // a second follower: nothing new
  EXPECT_EQ(taken(), Calls{});

  // A join of a connected user brings the room; the leave takes it back.
  Id other = chat.create_group(alice, "o", {}).room.id;
  hub->on_event(std::make_shared<const chat::Event>(chat::MemberJoined{other, alice, 0, 0}));
  ASSERT_TRUE(until([&] { std::lock_guard g(mu); return !calls.empty(); }));
  EXPECT_EQ(taken(), (Calls{{other, true}}));
  hub->on_event(std::make_shared<const chat::Event>(chat::MemberLeft{other, alice, 0}));
  ASSERT_TRUE(until([&] { std::lock_guard g(mu); return !calls.empty(); }));
  EXPECT_EQ(taken(), (Calls{{other, false}}));

  // A subscription that has just come into place: what was committed before it (no event
  // reached the hub) is read from storage for the room's followers here.
  hub->anchor(room, 0);
  chat.send(alice, room, "before the subscription", {});
  settle();
  ASSERT_TRUE(b->seqs().empty());
  hub->resync_room(room);
  ASSERT_TRUE(until([&] { return b->seqs().size() == 1 && br->seqs().size() == 1 && a->seqs().size() == 1; }));
  EXPECT_TRUE(a->of("new_message")[0].at("echo").as_bool());
  EXPECT_EQ(b->of("unread_count_update").back().at("unread_count").as_int64(), 1);

  // The room is followed while anyone here needs it.
  hub->remove(bob, room, br.get());
  hub->remove(bob, 0, b.get());
  EXPECT_EQ(taken(), Calls{});
  hub->remove(alice, 0, a.get());
  EXPECT_EQ(taken(), (Calls{{room, false}}));
}

TEST_F(HubTest, AUserSubscriptionIsCoveredByTheFirstReadOrByAResyncAfterIt) {
  // The pool busy: bob's first badge load waits, its read not begun.
  std::promise<void> release;
  auto gate = release.get_future().share();
  for (int i = 0; i < 2; ++i) boost::asio::post(pool, [gate] { gate.wait(); });
  auto b = std::make_shared<FakeConn>("b1");
  hub->add(bob, 0, b);
  hub->watching(bob);  // confirmed now: the read to come sees what is committed before it
  chat.send(alice, room, "before the read", {});
  release.set_value();
  ASSERT_TRUE(until([&] { return b->snapshot_count() > 0; }));
  auto snap = b->of("unread_count_update");
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].at("unread_count").as_int64(), 1);
  EXPECT_EQ(snap[0].at("last_seq").as_int64(), 1);
  // Confirmed after the load: read again, and what no event brought is filled from storage.
  chat.send(alice, room, "no event", {});
  hub->watching(bob);
  ASSERT_TRUE(until([&] { return b->seqs().size() == 1; }));
  EXPECT_EQ(b->seqs(), std::vector<std::int64_t>{2});
  ASSERT_TRUE(until([&] { return b->of("unread_count_update").back().at("unread_count").as_int64() == 2; }));
}

TEST(HubResync, ARefusedResyncIsTriedAgainUntilStorageAnswers) {
  // A file store whose reads can be made to fail (the "faulty" VFS).
  auto dir = std::filesystem::temp_directory_path() / ("parley-hub-resync-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  faultvfs::control().clear();
  {
    storage::SqliteOptions so;
    so.path = (dir / "p.db").string();
    so.readers = 2;
    so.synchronous_full = false;
    so.vfs = faultvfs::install();
    storage::SqliteStore store{so};
    chat::ChatService chat{store};
    auth::JwtCodec jwt{std::string(32, 'k'), 3600, store.database_id()};
    api::KnownUsers known{chat};
    api::WsGate gate{chat, jwt, known, api::WsGateOptions{}};
    api::Metrics metrics;
    api::LoadGauge load{100};
    api::WsService svc{chat, gate, metrics, load};
    boost::asio::io_context ioc;
    boost::asio::thread_pool pool{2};
    auto hub = std::make_unique<net::Hub>(ioc, pool, svc);
    auto until = [&](auto cond) {
      for (int i = 0; i < 1000 && !cond(); ++i) {
        ioc.restart();
        if (ioc.poll() == 0) std::this_thread::sleep_for(5ms);
      }
      return cond();
    };
    Id alice = chat.create_user("alice", "h").id;
    Id bob = chat.create_user("bob", "h").id;
    Id room = chat.create_group(alice, "r", {bob}).room.id;
    auto b = std::make_shared<FakeConn>("b1");
    hub->add(bob, 0, b);
    ASSERT_TRUE(until([&] { return b->snapshot_count() > 0; }));
    chat.send(alice, room, "lost 1", {});  // events lost: the hub hears nothing
    chat.send(alice, room, "lost 2", {});
    faultvfs::control().read_rc = SQLITE_IOERR_READ;
    hub->resync();
    // Storage refuses for a while: nothing arrives, nothing breaks.
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 300ms) {
      ioc.restart();
      ioc.poll();
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(b->seqs().empty());
    EXPECT_GT(faultvfs::control().reads_failed.load(), 0);
    faultvfs::control().read_rc = 0;
    ASSERT_TRUE(until([&] { return b->seqs().size() >= 2; }));  // the retry, a second later
    EXPECT_EQ(b->seqs(), (std::vector<std::int64_t>{1, 2}));
    auto badges = b->of("unread_count_update");
    ASSERT_FALSE(badges.empty());
    EXPECT_EQ(badges.back().at("unread_count").as_int64(), 2);
    EXPECT_TRUE(b->kick_codes().empty());
    hub->shutdown();
    pool.join();
  }
  faultvfs::control().clear();
  std::filesystem::remove_all(dir);
}

TEST_F(HubTest, DeliveredGoesToEveryMembersConnectionsAfterItsMessagesAndNeverBackwards) {
  Id other = chat.create_group(alice, "o", {bob}).room.id;
  auto a = sidebar(alice, "a1");
  auto ar = std::make_shared<FakeConn>("a2");
  hub->add(alice, room, ar);
  auto ao = std::make_shared<FakeConn>("a3");  // a chatroom socket of another room
  hub->add(alice, other, ao);
  hub->anchor(room, 0);
  auto b = sidebar(bob, "b1");
  auto m1 = chat.send(alice, room, "1", {}).message;
  auto m2 = chat.send(alice, room, "2", {}).message;
  auto delivered = [&](chat::Seq up_to, chat::Seq last_seq) {
    return std::make_shared<const chat::Event>(
        chat::MessageDelivered{room, bob, up_to, 1795000000000 + up_to, {alice, bob}, last_seq});
  };
  hub->on_event(created(m1));
  ASSERT_TRUE(until([&] { return b->seqs().size() == 1; }));
  // Delivered up to 2 before message 2 is out here: it waits for it.
  hub->on_event(delivered(2, 2));
  settle();
  EXPECT_TRUE(b->of("message_delivered").empty());
  hub->on_event(created(m2));
  ASSERT_TRUE(until([&] { return a->of("message_delivered").size() == 1 && ar->of("message_delivered").size() == 1 &&
                                 b->of("message_delivered").size() == 1; }));
  auto d = ar->of("message_delivered")[0];
  EXPECT_EQ(d.at("room_id").as_string(), format_id(room));
  EXPECT_EQ(d.at("user_id").as_string(), format_id(bob));
  EXPECT_EQ(d.at("up_to_seq").as_int64(), 2);
  EXPECT_EQ(d.at("delivered_at").as_string(), format_rfc3339(1795000000002));
  // On bob's sidebar, message 2 came before the delivered event that covers it.
  {
    std::lock_guard g(b->mu);
    std::size_t msg2 = 0, del = 0;
    for (std::size_t i = 0; i < b->got.size(); ++i) {
      const auto& o = b->got[i];
      if (o.at("type").as_string() == "new_message" && o.at("data").at("seq").as_int64() == 2) msg2 = i;
      if (o.at("type").as_string() == "message_delivered") del = i;
    }
    EXPECT_LT(msg2, del);
  }
  // A late (older or equal) watermark goes nowhere.
  hub->on_event(delivered(1, 1));
  hub->on_event(delivered(2, 2));
  settle();
  EXPECT_EQ(a->of("message_delivered").size(), 1u);
  EXPECT_EQ(b->of("message_delivered").size(), 1u);
  EXPECT_TRUE(ao->of("message_delivered").empty());  // not its room
}

// Reactions through the hub: to every member's sidebar and that room's chatroom sockets, after
// the message's new_message, and a change not newer than the last one sent for its (message,
// user, emoji) nowhere (an add and a remove through two instances may arrive swapped).
TEST_F(HubTest, ReactionsGoToEveryMembersConnectionsAfterTheMessageAndAStaleOneNowhere) {
  Id other = chat.create_group(alice, "o", {bob}).room.id;
  auto a = sidebar(alice, "a1");
  auto ar = std::make_shared<FakeConn>("a2");
  hub->add(alice, room, ar);
  auto ao = std::make_shared<FakeConn>("a3");  // a chatroom socket of another room
  hub->add(alice, other, ao);
  hub->anchor(room, 0);
  auto b = sidebar(bob, "b1");
  auto m1 = chat.send(alice, room, "1", {}).message;
  auto reaction = [&](bool add, TimeMs at) {
    return std::make_shared<const chat::Event>(
        chat::ReactionChanged{m1.id, room, m1.seq, bob, "\xF0\x9F\x91\x8D", add, at, {alice, bob}});
  };
  // Before message 1 is out here: it waits for it.
  hub->on_event(reaction(true, 100));
  settle();
  EXPECT_TRUE(b->of("reaction").empty());
  hub->on_event(created(m1));
  ASSERT_TRUE(until([&] { return a->of("reaction").size() == 1 && ar->of("reaction").size() == 1 && b->of("reaction").size() == 1; }));
  auto d = ar->of("reaction")[0];
  EXPECT_EQ(d.at("message_id").as_string(), format_id(m1.id));
  EXPECT_EQ(d.at("room_id").as_string(), format_id(room));
  EXPECT_EQ(d.at("user_id").as_string(), format_id(bob));
  EXPECT_EQ(d.at("emoji").as_string(), "\xF0\x9F\x91\x8D");
  EXPECT_EQ(d.at("action").as_string(), "add");
  EXPECT_EQ(b->seqs().size(), 1u);
  {
    std::lock_guard g(b->mu);
    EXPECT_EQ(b->got.back().at("type").as_string(), "reaction");  // after the message
  }
  // A remove stamped 102 arrives before an add stamped 101 (made earlier, elsewhere): the
  // remove goes out, the older add nowhere; the same stamp again neither.
  hub->on_event(reaction(false, 102));
  ASSERT_TRUE(until([&] { return b->of("reaction").size() == 2; }));
  hub->on_event(reaction(true, 101));
  hub->on_event(reaction(false, 102));
  settle();
  EXPECT_EQ(b->of("reaction").size(), 2u);
  EXPECT_EQ(a->of("reaction").size(), 2u);
  EXPECT_EQ(b->of("reaction")[1].at("action").as_string(), "remove");
  EXPECT_TRUE(ao->of("reaction").empty());  // not its room
}

// Typing through the hub: the typer's frames checked against the tracker, coalesced and
// published; the published events (fed back, as the bus does) shown to the room's other
// members' connections until a stop, the expiry or the typer's last socket closing.
TEST_F(HubTest, TypingReachesTheOtherMembersNotTheTypersConnectionsAndEndsByItself) {
  std::mutex pub_mu;
  std::vector<chat::Typing> published;
  net::Hub* target = nullptr;
  net::HubOptions o = opts;
  o.typing = chat::TypingLimits{300ms, 100ms, 1000};
  o.publish = [&](chat::EventPtr e) {
    {
      std::lock_guard g(pub_mu);
      published.push_back(std::get<chat::Typing>(*e));
    }
    target->on_event(e);
  };
  hub->shutdown();
  hub = std::make_unique<net::Hub>(ioc, pool, svc, o);
  target = hub.get();
  auto starts = [&] {
    std::lock_guard g(pub_mu);
    return std::count_if(published.begin(), published.end(), [](const chat::Typing& t) { return t.start; });
  };
  Id carol = chat.create_user("carol", "h").id;  // not in the room
  auto a1 = sidebar(alice, "a1");
  auto a2 = sidebar(alice, "a2");
  auto b1 = sidebar(bob, "b1");
  auto c1 = sidebar(carol, "c1");
  using V = api::TypingDesk::Verdict;

  EXPECT_EQ(hub->typing({carol, 0, "c1"}, room, true, false), V::NotMember);
  EXPECT_EQ(hub->typing({alice, 0, "a1"}, room, true, false), V::Sent);
  ASSERT_TRUE(until([&] { return b1->of("typing").size() >= 2; }));  // start, then stop at the expiry
  auto t = b1->of("typing");
  EXPECT_EQ(t[0].at("state").as_string(), "start");
  EXPECT_EQ(t[0].at("user_id").as_string(), format_id(alice));
  EXPECT_EQ(t[0].at("room_id").as_string(), format_id(room));
  EXPECT_EQ(t[1].at("state").as_string(), "stop");
  EXPECT_TRUE(a1->of("typing").empty());
  EXPECT_TRUE(a2->of("typing").empty());
  EXPECT_TRUE(c1->of("typing").empty());
  EXPECT_EQ(starts(), 1);
  {
    std::lock_guard g(pub_mu);
    ASSERT_EQ(published.size(), 1u);  // the expiry is each receiver's: no stop was published
    EXPECT_EQ(published[0].ttl_ms, 300);
  }

  // A burst: the first start and one trailing start are published, no more.
  for (int i = 0; i < 10; ++i) hub->typing({alice, 0, "a2"}, room, true, false);
  ASSERT_TRUE(until([&] { return starts() >= 3; }));
  settle();
  EXPECT_EQ(starts(), 3);

  // The typer's last socket goes: a stop is published at once (this side publishes stops
  // only for a stop frame or a disconnect, never at the expiry).
  auto stops = [&] {
    std::lock_guard g(pub_mu);
    return std::count_if(published.begin(), published.end(), [](const chat::Typing& t) { return !t.start; });
  };
  hub->typing({alice, 0, "a2"}, room, true, false);
  hub->remove(alice, 0, a1.get());
  settle();
  EXPECT_EQ(stops(), 0);  // a2 still covers the room
  hub->typing({alice, 0, "a2"}, room, true, false);
  hub->remove(alice, 0, a2.get());
  EXPECT_EQ(stops(), 1);
  ASSERT_TRUE(until([&] { return b1->of("typing").back().at("state") == "stop"; }));
}

TEST_F(HubTest, PresenceReachesEveryConnectionOfTheAudienceOnlyOnceAndNeverBackwards) {
  // What the hub tells the keeper: the first connection of a user here and the last close.
  std::mutex mu;
  std::vector<std::pair<Id, bool>> told;
  net::HubOptions o = opts;
  o.presence = [&](Id user, bool here) {
    std::lock_guard g(mu);
    told.emplace_back(user, here);
  };
  hub->shutdown();
  hub = std::make_unique<net::Hub>(ioc, pool, svc, o);
  Id carol = chat.create_user("carol", "h").id;  // not in the audience
  auto a1 = sidebar(alice, "a1");
  auto a2 = std::make_shared<FakeConn>("a2");  // alice's socket of room
  hub->add(alice, room, a2);
  auto b1 = sidebar(bob, "b1");
  auto c1 = sidebar(carol, "c1");
  auto presence = [&](bool online, TimeMs at, std::vector<Id> audience) {
    hub->on_event(std::make_shared<const chat::Event>(chat::Presence{bob, online, std::nullopt, at, std::move(audience)}));
  };
  presence(true, 100, {alice, bob});   // bob in his own audience: still not told
  presence(true, 101, {alice});        // the same status again: not sent
  presence(false, 90, {alice});        // older than what was sent: not sent
  presence(false, 200, {alice});
  hub->on_event(std::make_shared<const chat::Event>(chat::Presence{carol, true, 5, 300, {alice}}));  // marker
  ASSERT_TRUE(until([&] { return a1->of("presence").size() == 3 && a2->of("presence").size() == 3; }));
  for (auto* c : {a1.get(), a2.get()}) {
    auto got = c->of("presence");
    EXPECT_EQ(got[0], (json::object{{"user_id", std::to_string(bob)}, {"status", "online"}, {"last_seen", nullptr}}));
    EXPECT_EQ(got[1].at("status"), "offline");
    EXPECT_EQ(got[2].at("user_id"), json::value(std::to_string(carol)));
    EXPECT_EQ(got[2].at("last_seen"), "1970-01-01T00:00:00.005Z");
  }
  EXPECT_TRUE(b1->of("presence").empty());
  EXPECT_TRUE(c1->of("presence").empty());
  hub->remove(alice, 0, a1.get());  // alice still has a2: nothing to tell
  hub->remove(alice, room, a2.get());
  std::lock_guard g(mu);
  EXPECT_EQ(told, (std::vector<std::pair<Id, bool>>{{alice, true}, {bob, true}, {carol, true}, {alice, false}}));
}
