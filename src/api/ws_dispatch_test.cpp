#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/ws_service.h"
#include "storage/sqlite/sqlite_store.h"

using namespace parley;
namespace json = boost::json;

namespace {
struct Dispatch : ::testing::Test {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  chat::ChatService chat{store};
  api::Metrics metrics;
  api::LoadGauge load{10};
  api::WsDispatcher d{chat, metrics, load};
  Id alice = chat.create_user("alice", "h").id;
  Id bob = chat.create_user("bob", "h").id;
  Id room = chat.create_group(alice, "r", {}).room.id;
  api::WsIdentity sidebar{alice, 0, "c1"};
  api::WsIdentity chatroom{alice, room, "c2"};

  json::object answer(const api::WsIdentity& who, std::string_view frame, bool limited = false) {
    auto in = d.dispatch(who, frame, limited);
    std::string text = in.blocking ? in.blocking() : in.reply;
    EXPECT_TRUE(in.blocking == nullptr || in.reply.empty());
    return json::parse(text).as_object();
  }
  std::string code(const json::object& o) {
    EXPECT_EQ(o.at("type").as_string(), "error") << json::serialize(o);
    return std::string(o.at("data").as_object().at("code").as_string());
  }
  std::string send(Id room_id, std::string_view content, std::string_view cmid) {
    json::object data{{"content", content}, {"client_msg_id", cmid}};
    if (room_id) data["room_id"] = format_id(room_id);
    return json::serialize(json::object{{"type", "send_message"}, {"data", data}});
  }
  chat::Seq last_seq() { return chat.get_room(alice, room).room.last_seq; }
};
}  // namespace

TEST_F(Dispatch, PingAndHeartbeatAreAnsweredAtOnceWithFiniteTimestampsOnly) {
  auto in = d.dispatch(sidebar, R"({"type":"ping","data":{"timestamp":12.5}})", false);
  EXPECT_FALSE(in.blocking);
  auto pong = json::parse(in.reply).as_object();
  EXPECT_EQ(pong.at("type").as_string(), "pong");
  EXPECT_EQ(pong.at("data").as_object().at("timestamp").as_double(), 12.5);
  EXPECT_EQ(code(answer(sidebar, R"({"type":"ping","data":{"timestamp":1e400}})")), "invalid_request");
  EXPECT_EQ(code(answer(sidebar, R"({"type":"heartbeat","data":{"timestamp":-1e400}})")), "invalid_request");
  EXPECT_EQ(answer(sidebar, R"({"type":"heartbeat"})").at("type").as_string(), "heartbeat_ack");
}

TEST_F(Dispatch, MalformedAndUnknownFramesGetErrors) {
  EXPECT_EQ(code(answer(sidebar, "not json")), "invalid_json");
  EXPECT_EQ(code(answer(sidebar, "[1]")), "invalid_json");
  EXPECT_EQ(code(answer(sidebar, R"({"type":3})")), "invalid_request");
  EXPECT_EQ(code(answer(sidebar, R"({"type":"ping","data":7})")), "invalid_request");
  EXPECT_EQ(code(answer(sidebar, R"({"type":"nope"})")), "unknown_type");
}

TEST_F(Dispatch, SendMessageIsStoredOffTheIoThreadAndAcknowledged) {
  auto in = d.dispatch(sidebar, send(room, "hello", "m-1"), false);
  ASSERT_TRUE(in.blocking);  // the storage work is handed back, not done here
  EXPECT_EQ(last_seq(), 0);
  auto ack = json::parse(in.blocking()).as_object();
  EXPECT_EQ(ack.at("type").as_string(), "ack");
  EXPECT_EQ(ack.at("data").as_object().at("client_msg_id").as_string(), "m-1");
  EXPECT_EQ(ack.at("data").as_object().at("message").as_object().at("seq").as_int64(), 1);
  // On a chatroom socket room_id may be left out; a retry returns the original.
  auto again = answer(chatroom, R"({"type":"send_message","data":{"content":"hello","client_msg_id":"m-1"}})");
  EXPECT_EQ(again.at("data").as_object().at("message").as_object().at("seq").as_int64(), 1);
  EXPECT_EQ(last_seq(), 1);
}

TEST_F(Dispatch, EveryRefusedSendNamesItsClientMsgIdAndStoresNothing) {
  auto cmid_of = [](const json::object& o) -> std::string {
    auto c = o.at("data").as_object().if_contains("client_msg_id");
    return c ? std::string(c->as_string()) : "-";
  };
  auto other = chat.create_group(bob, "bob's", {}).room.id;
  struct Case {
    const api::WsIdentity* who;
    std::string frame;
    std::string code, cmid;
  } cases[] = {
      {&sidebar, send(0, "x", "a"), "invalid_request", "a"},        // no room on the sidebar
      {&sidebar, send(424242, "x", "b"), "not_found", "b"},         // unknown room
      {&sidebar, send(other, "x", "c"), "forbidden", "c"},          // not a member
      {&chatroom, send(other, "x", "d"), "invalid_request", "d"},   // another room on a chatroom socket
      {&sidebar, send(room, "", "e"), "invalid_request", "e"},      // empty
      {&sidebar, send(room, "  \n", "f"), "invalid_request", "f"},  // whitespace only
      {&sidebar, send(room, std::string(16385, 'x'), "g"), "invalid_request", "g"},  // too long
      {&sidebar, R"({"type":"send_message","data":{"room_id":"1","content":5,"client_msg_id":"h"}})", "invalid_request",
       "h"},
      {&sidebar, R"({"type":"send_message","data":{"room_id":"x1","content":"x","client_msg_id":"i"}})",
       "invalid_request", "i"},
      {&sidebar, R"({"type":"send_message","data":{"room_id":"1","content":"x"}})", "invalid_request", "-"},
      {&sidebar, send(room, "x", std::string(65, 'k')), "invalid_request", std::string(65, 'k')},
  };
  for (const auto& c : cases) {
    auto o = answer(*c.who, c.frame);
    EXPECT_EQ(code(o), c.code) << c.frame.substr(0, 120);
    EXPECT_EQ(cmid_of(o), c.cmid) << c.frame.substr(0, 120);
  }
  auto limited = answer(sidebar, send(room, "x", "rl"), true);
  EXPECT_EQ(code(limited), "rate_limited");
  EXPECT_EQ(cmid_of(limited), "rl");
  EXPECT_EQ(last_seq(), 0);
}

TEST_F(Dispatch, AnOverloadedServerRefusesNewSends) {
  load.io_lag_ms(1000);  // the IO threads run a second late
  auto o = answer(sidebar, send(room, "x", "o"));
  EXPECT_EQ(code(o), "overloaded");
  load.io_lag_ms(0);
  EXPECT_EQ(answer(sidebar, send(room, "x", "o")).at("type").as_string(), "ack");
}

TEST_F(Dispatch, DeliveredIsValidatedHereAndStoredOffTheIoThreadWithNoAnswerOfItsOwn) {
  chat.add_member(alice, room, bob);
  chat.send(alice, room, "1", {});
  chat.send(alice, room, "2", {});
  api::WsIdentity bob_side{bob, 0, "c3"};
  api::WsIdentity bob_room{bob, room, "c4"};
  auto frame = [](std::string_view data) { return std::string(R"({"type":"delivered","data":)") + std::string(data) + "}"; };
  auto r = format_id(room);
  // Refused before any storage work.
  for (std::string data : {std::string(R"({"room_id":")") + r + R"("})",                  // no up_to_seq
                           std::string(R"({"room_id":")") + r + R"(","up_to_seq":-1})",  // negative
                           std::string(R"({"room_id":")") + r + R"(","up_to_seq":1.5})",
                           std::string(R"({"room_id":")") + r + R"(","up_to_seq":"1"})",
                           std::string(R"({"room_id":")") + r + R"(","up_to_seq":null})",
                           std::string(R"({"up_to_seq":1})"),                        // sidebar: room_id required
                           std::string(R"({"room_id":7,"up_to_seq":1})")}) {
    auto in = d.dispatch(bob_side, frame(data), false);
    EXPECT_FALSE(in.blocking) << data;
    EXPECT_EQ(code(json::parse(in.reply).as_object()), "invalid_request") << data;
  }
  EXPECT_EQ(code(answer(bob_room, frame(R"({"room_id":"123456","up_to_seq":1})"))), "invalid_request");
  // Accepted: the work is handed back; it answers nothing itself (the event does).
  auto in = d.dispatch(bob_side, frame(std::string(R"({"room_id":")") + r + R"(","up_to_seq":1})"), false);
  ASSERT_TRUE(in.blocking);
  EXPECT_TRUE(in.reply.empty());
  EXPECT_EQ(in.blocking(), "");
  in = d.dispatch(bob_room, frame(R"({"up_to_seq":18446744073709551615})"), false);  // beyond int64: clamped
  ASSERT_TRUE(in.blocking);
  EXPECT_EQ(in.blocking(), "");
  auto w = chat.read_by_who(alice, chat.history(alice, room, {}, {}, 10).messages.back().id);
  ASSERT_EQ(w.delivered_to.size(), 1u);
  EXPECT_EQ(w.delivered_to[0].user.id, bob);
  // Refused by the domain: an unknown room, a non-member.
  EXPECT_EQ(code(answer(bob_side, frame(R"({"room_id":"987654321","up_to_seq":1})"))), "not_found");
  Id carol = chat.create_user("carol", "h").id;
  EXPECT_EQ(code(answer(api::WsIdentity{carol, 0, "c5"}, frame(std::string(R"({"room_id":")") + r + R"(","up_to_seq":1})"))),
            "forbidden");
}

namespace {
// What the dispatcher hands the desk, and a verdict to answer with.
struct FakeDesk : api::TypingDesk {
  struct Call {
    Id user, room;
    bool start, checked;
  };
  std::vector<Call> calls;
  Verdict first = Verdict::Sent;
  Verdict typing(const api::WsIdentity& who, Id room, bool start, bool member_checked) override {
    calls.push_back({who.user, room, start, member_checked});
    return member_checked ? Verdict::Sent : first;
  }
};
std::string typing_frame(std::string_view data) { return std::string(R"({"type":"typing","data":)") + std::string(data) + "}"; }
}  // namespace

TEST_F(Dispatch, TypingIsValidatedBeforeTheDeskAndRefusalsAreErrors) {
  EXPECT_EQ(code(answer(sidebar, typing_frame(R"({"room_id":"1","state":"start"})"))), "unavailable");  // no desk
  FakeDesk desk;
  d.attach_typing(&desk);
  auto r = format_id(room);
  for (const char* bad : {R"({"state":"start"})", R"({"room_id":"1x","state":"start"})", R"({"room_id":7,"state":"start"})"}) {
    auto o = answer(sidebar, typing_frame(bad));
    EXPECT_EQ(code(o), "invalid_request") << bad;
    EXPECT_NE(std::string(o.at("data").as_object().at("message").as_string()).find("room_id"), std::string::npos);
  }
  for (std::string bad : {R"({"room_id":")" + r + R"(","state":"typing"})", R"({"room_id":")" + r + R"("})",
                          R"({"room_id":")" + r + R"(","state":true})"}) {
    auto o = answer(sidebar, typing_frame(bad));
    EXPECT_EQ(code(o), "invalid_request") << bad;
    EXPECT_NE(std::string(o.at("data").as_object().at("message").as_string()).find("state"), std::string::npos);
  }
  EXPECT_EQ(code(answer(chatroom, typing_frame(R"({"room_id":"999","state":"start"})"))), "invalid_request");
  EXPECT_TRUE(desk.calls.empty());  // none of those reached the desk

  auto in = d.dispatch(chatroom, typing_frame(R"({"state":"stop"})"), false);  // its own room
  EXPECT_TRUE(in.reply.empty());
  EXPECT_FALSE(in.blocking);
  ASSERT_EQ(desk.calls.size(), 1u);
  EXPECT_EQ(desk.calls[0].room, room);
  EXPECT_FALSE(desk.calls[0].start);

  desk.first = api::TypingDesk::Verdict::NotMember;
  EXPECT_EQ(code(answer(sidebar, typing_frame(R"({"room_id":")" + r + R"(","state":"start"})"))), "forbidden");
  desk.first = api::TypingDesk::Verdict::Full;
  EXPECT_EQ(code(answer(sidebar, typing_frame(R"({"room_id":")" + r + R"(","state":"start"})"))), "overloaded");
}

TEST_F(Dispatch, TypingWhileTheDeskDoesNotKnowTheRoomsReadsMembershipFromStorage) {
  FakeDesk desk;
  desk.first = api::TypingDesk::Verdict::Unknown;
  d.attach_typing(&desk);
  auto in = d.dispatch(sidebar, typing_frame(R"({"room_id":")" + format_id(room) + R"(","state":"start"})"), false);
  ASSERT_TRUE(in.blocking);
  EXPECT_EQ(in.blocking(), "");  // a member: handed to the desk again, checked
  ASSERT_EQ(desk.calls.size(), 2u);
  EXPECT_TRUE(desk.calls[1].checked);
  // bob is not in the room; an unknown room answers the same.
  api::WsIdentity bobs{bob, 0, "c3"};
  EXPECT_EQ(code(answer(bobs, typing_frame(R"({"room_id":")" + format_id(room) + R"(","state":"start"})"))), "forbidden");
  EXPECT_EQ(code(answer(bobs, typing_frame(R"({"room_id":"987654321","state":"start"})"))), "forbidden");
  EXPECT_EQ(desk.calls.size(), 4u);  // the two refused ones were never handed over checked
  EXPECT_FALSE(desk.calls[2].checked);
  EXPECT_FALSE(desk.calls[3].checked);
}
