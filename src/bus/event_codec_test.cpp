#include "bus/event_codec.h"

#include <gtest/gtest.h>

#include "bus/channels.h"

using namespace parley;
using namespace parley::chat;

namespace {

Message sample_message(bool with_cmid) {
  Message m;
  m.id = 900000000000000001;
  m.room_id = 42;
  m.sender_id = 7;
  m.content = "h\xC3\xA9llo \"quoted\" \\ \n\t\xF0\x9F\x98\x80";
  m.seq = 123456789;
  m.created_at = 1795000000123;
  if (with_cmid) m.client_msg_id = "c-1";
  return m;
}

bool same(const Message& a, const Message& b) {
  return a.id == b.id && a.room_id == b.room_id && a.sender_id == b.sender_id && a.content == b.content &&
         a.seq == b.seq && a.created_at == b.created_at && a.client_msg_id == b.client_msg_id;
}

Event round_trip(const Event& e) {
  std::string text = bus::encode(e, 0xFFFFFFFFFFFFFFF1ull, 17);
  std::string err;
  auto env = bus::decode(text, &err);
  EXPECT_TRUE(env) << err << " in " << text;
  if (!env) return e;
  EXPECT_EQ(env->instance, 0xFFFFFFFFFFFFFFF1ull);
  EXPECT_EQ(env->number, 17u);
  return *env->event;
}

}  // namespace

TEST(EventCodec, MessageCreatedRoundTripsEveryField) {
  for (bool cmid : {false, true}) {
    MessageCreated e{sample_message(cmid), {{7, 123456789}, {8, 3}, {9, 0}}, cmid ? "conn-abc" : ""};
    auto got = std::get<MessageCreated>(round_trip(e));
    EXPECT_TRUE(same(got.message, e.message));
    ASSERT_EQ(got.members.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got.members[i].user, e.members[i].user);
      EXPECT_EQ(got.members[i].read_seq, e.members[i].read_seq);
    }
    EXPECT_EQ(got.origin, e.origin);
  }
}

TEST(EventCodec, MessageReadRoundTripsEveryField) {
  MessageRead e{42, 8, sample_message(true), 1795000000999, {{8, 1795000000999}, {9, 1795000000500}}, {7, 8, 9}, 5000};
  auto got = std::get<MessageRead>(round_trip(e));
  EXPECT_EQ(got.room, 42);
  EXPECT_EQ(got.reader, 8);
  EXPECT_TRUE(same(got.newest_read, e.newest_read));
  EXPECT_EQ(got.read_at, e.read_at);
  EXPECT_EQ(got.read_status, e.read_status);
  EXPECT_EQ(got.members, e.members);
  EXPECT_EQ(got.last_seq, 5000);
}

TEST(EventCodec, MessageDeliveredRoundTripsEveryField) {
  MessageDelivered e{42, 8, 4999, 1795000000777, {7, 8, 9}, 5000};
  auto got = std::get<MessageDelivered>(round_trip(e));
  EXPECT_EQ(got.room, 42);
  EXPECT_EQ(got.user, 8);
  EXPECT_EQ(got.up_to_seq, 4999);
  EXPECT_EQ(got.delivered_at, 1795000000777);
  EXPECT_EQ(got.members, e.members);
  EXPECT_EQ(got.last_seq, 5000);
}

TEST(EventCodec, MembershipAndRevocationRoundTrip) {
  auto j = std::get<MemberJoined>(round_trip(MemberJoined{42, 9, 77, 70}));
  EXPECT_EQ(j.room, 42);
  EXPECT_EQ(j.user, 9);
  EXPECT_EQ(j.last_seq, 77);
  EXPECT_EQ(j.read_seq, 70);
  auto l = std::get<MemberLeft>(round_trip(MemberLeft{42, 9, 78, 1795000000777}));
  EXPECT_EQ(l.room, 42);
  EXPECT_EQ(l.user, 9);
  EXPECT_EQ(l.last_seq, 78);
  EXPECT_EQ(l.at, 1795000000777);
  // Without "at" (an instance from before room_left): before anything.
  auto old = bus::decode(R"({"v":1,"i":5,"n":1,"t":"ml","e":{"room":42,"user":9,"last_seq":78}})");
  ASSERT_TRUE(old);
  EXPECT_EQ(std::get<MemberLeft>(*old->event).at, 0);
  auto r = std::get<TokensRevoked>(round_trip(TokensRevoked{9, 3}));
  EXPECT_EQ(r.user, 9);
  EXPECT_EQ(r.version, 3);
}

TEST(EventCodec, RoomUpdatedRoundTripsEveryField) {
  RoomUpdated g{42, std::string("caf\xC3\xA9 \"x\""), RoomType::Group,
                {{7, "alice", 1795000000123}, {9, "bob.b", 1795000000456}}, {9}, false, 1795000000999};
  auto got = std::get<RoomUpdated>(round_trip(g));
  EXPECT_EQ(got.room, 42);
  EXPECT_EQ(got.name, g.name);
  EXPECT_EQ(got.type, RoomType::Group);
  ASSERT_EQ(got.members.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got.members[i].id, g.members[i].id);
    EXPECT_EQ(got.members[i].username, g.members[i].username);
    EXPECT_EQ(got.members[i].created_at, g.members[i].created_at);
  }
  EXPECT_EQ(got.joined, g.joined);
  EXPECT_FALSE(got.created);
  EXPECT_EQ(got.at, 1795000000999);
  // A new direct room: no name, created, every member joined.
  RoomUpdated d{43, std::nullopt, RoomType::Direct, {{7, "alice", 1}, {9, "bob", 2}}, {7, 9}, true};
  auto dd = std::get<RoomUpdated>(round_trip(d));
  EXPECT_EQ(dd.name, std::nullopt);
  EXPECT_EQ(dd.type, RoomType::Direct);
  EXPECT_EQ(dd.joined, (std::vector<Id>{7, 9}));
  EXPECT_TRUE(dd.created);
  // After a leave: nobody joined.
  auto l = std::get<RoomUpdated>(round_trip(RoomUpdated{42, std::string("r"), RoomType::Group, {{7, "alice", 1}}, {}, false}));
  EXPECT_TRUE(l.joined.empty());
  EXPECT_EQ(l.members.size(), 1u);
}

TEST(EventCodec, MalformedRoomUpdatedIsRefused) {
  std::string good = bus::encode(RoomUpdated{42, std::string("r"), RoomType::Group, {{7, "a", 1}}, {7}, false}, 5, 1);
  ASSERT_TRUE(bus::decode(good));
  auto with = [](const char* e) { return std::string("{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ru\",\"e\":") + e + "}"; };
  ASSERT_TRUE(bus::decode(with(R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[],"created":false,"at":1})")));
  const char* bad[] = {
      R"({"room":42,"type":"x","members":[[7,"a",1]],"joined":[],"created":false,"at":1})",    // type
      R"({"room":42,"type":"g","members":[[7,1]],"joined":[],"created":false,"at":1})",        // member shape
      R"({"room":42,"type":"g","members":[[7,9,1]],"joined":[],"created":false,"at":1})",      // username type
      R"({"room":42,"type":"g","members":[[0,"a",1]],"joined":[],"created":false,"at":1})",    // member id
      R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[-1],"created":false,"at":1})",  // joined id
      R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[],"created":1,"at":1})",        // created type
      R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[],"at":1})",                    // missing created
      R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[],"created":false})",    // missing at
      R"({"room":42,"type":"g","members":[[7,"a",1]],"joined":[],"created":false,"at":-1})",  // negative at
      R"({"room":42,"name":5,"type":"g","members":[],"joined":[],"created":false,"at":1})",    // name type
  };
  for (const char* e : bad) {
    std::string err;
    EXPECT_FALSE(bus::decode(with(e), &err)) << e;
    EXPECT_FALSE(err.empty()) << e;
  }
}

TEST(EventCodec, TypingRoundTripsEveryField) {
  auto s = std::get<Typing>(round_trip(Typing{42, 9, true, 5760}));
  EXPECT_EQ(s.room, 42);
  EXPECT_EQ(s.user, 9);
  EXPECT_TRUE(s.start);
  EXPECT_EQ(s.ttl_ms, 5760);
  auto t = std::get<Typing>(round_trip(Typing{43, 10, false, 0}));
  EXPECT_EQ(t.room, 43);
  EXPECT_EQ(t.user, 10);
  EXPECT_FALSE(t.start);
  EXPECT_EQ(t.ttl_ms, 0);
  const char* bad[] = {
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ty\",\"e\":{\"room\":42,\"user\":9,\"start\":1,\"ttl\":6000}}",  // not a bool
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ty\",\"e\":{\"room\":42,\"user\":9,\"ttl\":6000}}",  // no start
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ty\",\"e\":{\"room\":42,\"user\":9,\"start\":true,\"ttl\":-1}}",
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ty\",\"e\":{\"room\":42,\"user\":9,\"start\":true,\"ttl\":60001}}",
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ty\",\"e\":{\"room\":0,\"user\":9,\"start\":true,\"ttl\":6000}}",
  };
  for (const char* text : bad) {
    std::string err;
    EXPECT_FALSE(bus::decode(text, &err)) << text;
    EXPECT_FALSE(err.empty()) << text;
  }
}

TEST(EventCodec, ReactionChangedRoundTripsEveryFieldAndRefusesMalformedOnes) {
  for (bool add : {true, false}) {
    ReactionChanged e{900000000000000001, 42, 17, 9, "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", add,
                      1795000000123, {7, 9, 11}};
    auto got = std::get<ReactionChanged>(round_trip(e));
    EXPECT_EQ(got.message, e.message);
    EXPECT_EQ(got.room, 42);
    EXPECT_EQ(got.seq, 17);
    EXPECT_EQ(got.user, 9);
    EXPECT_EQ(got.emoji, e.emoji);
    EXPECT_EQ(got.add, add);
    EXPECT_EQ(got.at, e.at);
    EXPECT_EQ(got.members, e.members);
  }
  const char* bad[] = {
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":0,\"room\":42,\"seq\":1,\"user\":9,\"emoji\":\"x\","
      "\"add\":true,\"at\":1,\"members\":[9]}}",  // not a message id
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":1,\"room\":42,\"seq\":1,\"user\":9,\"emoji\":\"\","
      "\"add\":true,\"at\":1,\"members\":[9]}}",  // an empty emoji
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":1,\"room\":42,\"seq\":1,\"user\":9,"
      "\"emoji\":\"123456789012345678901234567890123\",\"add\":true,\"at\":1,\"members\":[9]}}",  // 33 bytes
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":1,\"room\":42,\"seq\":1,\"user\":9,\"emoji\":\"x\","
      "\"add\":1,\"at\":1,\"members\":[9]}}",  // add not a boolean
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":1,\"room\":42,\"seq\":-1,\"user\":9,\"emoji\":\"x\","
      "\"add\":true,\"at\":1,\"members\":[9]}}",  // a negative seq
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"rc\",\"e\":{\"msg\":1,\"room\":42,\"seq\":1,\"user\":9,\"emoji\":\"x\","
      "\"add\":true,\"at\":1,\"members\":[0]}}",  // a member that is not an id
  };
  for (const char* text : bad) {
    std::string err;
    EXPECT_FALSE(bus::decode(text, &err)) << text;
    EXPECT_FALSE(err.empty()) << text;
  }
}

TEST(EventCodec, MalformedPayloadsAreRefusedWithAReason) {
  std::string good = bus::encode(MemberLeft{42, 9, 78}, 5, 1);
  ASSERT_TRUE(bus::decode(good));
  const char* bad[] = {
      "",
      "not json",
      "[1,2]",
      "{\"v\":2,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":42,\"user\":9,\"last_seq\":78}}",   // version
      "{\"v\":1,\"i\":-5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":42,\"user\":9,\"last_seq\":78}}",  // instance
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"zz\",\"e\":{\"room\":42,\"user\":9,\"last_seq\":78}}",   // type
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":42,\"user\":9}}",                   // missing field
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":\"42\",\"user\":9,\"last_seq\":78}}",  // wrong type
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":0,\"user\":9,\"last_seq\":78}}",    // not an id
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":42,\"user\":9,\"last_seq\":-1}}",   // negative seq
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"ml\",\"e\":{\"room\":42,\"user\":9,\"last_seq\":1.5}}",  // not an integer
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"mc\",\"e\":{\"m\":{},\"members\":[],\"origin\":\"\"}}",  // empty message
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"mc\",\"e\":{\"m\":{\"id\":1,\"room\":2,\"sender\":3,\"content\":\"x\",\"seq\":1,"
      "\"at\":1},\"members\":[[1]],\"origin\":\"\"}}",  // a member that is not a pair
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"tr\",\"e\":{\"user\":9,\"version\":3}",                 // truncated
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"mc\",\"e\":{\"m\":{\"id\":1,\"room\":2,\"sender\":3,\"content\":\"\xC3\x28\","
      "\"seq\":1,\"at\":1},\"members\":[],\"origin\":\"\"}}",  // invalid UTF-8
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"md\",\"e\":{\"room\":42,\"user\":9,\"up_to\":-1,\"at\":1,"
      "\"members\":[9],\"last_seq\":3}}",  // negative delivered watermark
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"md\",\"e\":{\"room\":42,\"user\":9,\"up_to\":4,\"at\":1,"
      "\"members\":[9],\"last_seq\":3}}",  // delivered past the room's last seq
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"md\",\"e\":{\"room\":42,\"user\":9,\"up_to\":2,\"at\":1,"
      "\"members\":[0],\"last_seq\":3}}",  // a member that is not an id
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
  };
  for (const char* text : bad) {
    std::string err;
    EXPECT_FALSE(bus::decode(text, &err)) << text;
    EXPECT_FALSE(err.empty()) << text;
  }
}

TEST(Channels, RoomEventsGoToTheRoomMembershipToTheUserRevocationsToAll) {
  const std::string p = "parley:";
  MessageCreated mc{sample_message(false), {{7, 1}, {9, 0}, {8, 0}}, ""};
  EXPECT_EQ(bus::channel_for(mc, p), "parley:r:" + std::to_string(mc.message.room_id));
  MessageRead mr{42, 10, sample_message(false), 1, {}, {8, 9}, 5};
  EXPECT_EQ(bus::channel_for(mr, p), "parley:r:42");
  EXPECT_EQ(bus::channel_for(MessageDelivered{42, 10, 3, 1, {8, 10}, 5}, p), "parley:r:42");
  EXPECT_EQ(bus::channel_for(MemberJoined{42, 9, 1, 1}, p), "parley:u:9");
  EXPECT_EQ(bus::channel_for(MemberLeft{42, 9, 1}, p), "parley:u:9");
  EXPECT_EQ(bus::channel_for(TokensRevoked{9, 2}, p), "parley:all");
  // room_updated: an add to the room and the new member, a leave to the room, a new room to all.
  using V = std::vector<std::string>;
  EXPECT_EQ(bus::channels_for(RoomUpdated{42, std::string("r"), RoomType::Group, {}, {9}, false}, p),
            (V{"parley:r:42", "parley:u:9"}));
  EXPECT_EQ(bus::channels_for(RoomUpdated{42, std::string("r"), RoomType::Group, {}, {}, false}, p), (V{"parley:r:42"}));
  EXPECT_EQ(bus::channels_for(RoomUpdated{42, std::nullopt, RoomType::Direct, {}, {7, 9}, true}, p), (V{"parley:all"}));
  EXPECT_EQ(bus::channels_for(MemberLeft{42, 9, 1}, p), (V{"parley:u:9"}));
  EXPECT_EQ(bus::channel_for(Typing{42, 9, true, 6000}, p), "parley:r:42");  // ephemeral, but a room's
  EXPECT_EQ(bus::channel_for(ReactionChanged{1, 42, 1, 9, "x", true, 1, {9}}, p), "parley:r:42");
  using C = bus::ChannelOf;
  EXPECT_EQ(bus::parse_channel("parley:u:9", p), (C{C::User, 9}));
  EXPECT_EQ(bus::parse_channel("parley:r:42", p), (C{C::Room, 42}));
  EXPECT_EQ(bus::parse_channel("parley:all", p), C{});
  EXPECT_EQ(bus::parse_channel("other:u:9", p), C{});
  EXPECT_EQ(bus::parse_channel("parley:u:x", p), C{});
  EXPECT_EQ(bus::parse_channel("parley:r:", p), C{});
  EXPECT_EQ(bus::parse_channel("parley:x:9", p), C{});
}

TEST(EventCodec, PresenceRoundTripsEveryFieldAndGoesToEveryInstance) {
  auto on = std::get<Presence>(round_trip(Presence{9, true, std::nullopt, 1700000000000, {3, 7}}));
  EXPECT_EQ(on.user, 9);
  EXPECT_TRUE(on.online);
  EXPECT_FALSE(on.last_seen);
  EXPECT_EQ(on.at, 1700000000000);
  EXPECT_EQ(on.audience, (std::vector<Id>{3, 7}));
  auto off = std::get<Presence>(round_trip(Presence{9, false, 1699999999000, 1700000005000, {}}));
  EXPECT_FALSE(off.online);
  EXPECT_EQ(off.last_seen, 1699999999000);
  EXPECT_TRUE(off.audience.empty());
  EXPECT_EQ(bus::channel_for(Presence{9, true, std::nullopt, 1, {3}}, "parley:"), "parley:all");
  const char* bad[] = {
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"pr\",\"e\":{\"user\":9,\"online\":1,\"at\":1,\"audience\":[]}}",  // not a bool
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"pr\",\"e\":{\"user\":9,\"online\":true,\"at\":1}}",  // no audience
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"pr\",\"e\":{\"user\":9,\"online\":true,\"at\":1,\"audience\":[0]}}",  // not an id
      "{\"v\":1,\"i\":5,\"n\":1,\"t\":\"pr\",\"e\":{\"user\":9,\"online\":true,\"at\":1,\"seen\":-1,\"audience\":[]}}",
  };
  for (const char* e : bad) {
    std::string err;
    EXPECT_FALSE(bus::decode(e, &err)) << e;
    EXPECT_FALSE(err.empty()) << e;
  }
  // The audience's bound: 10,000 users pass, one more was not written by encode().
  Presence big{9, true, std::nullopt, 1, {}};
  for (Id u = 1; u <= static_cast<Id>(Presence::kMaxPresenceAudience); ++u) big.audience.push_back(u);
  EXPECT_EQ(std::get<Presence>(round_trip(big)).audience.size(), Presence::kMaxPresenceAudience);
  big.audience.push_back(10001);
  std::string err;
  EXPECT_FALSE(bus::decode(bus::encode(big, 5, 1), &err));
  EXPECT_NE(err.find("too long"), std::string::npos) << err;
}

TEST(EventCodec, UploadProgressRoundTripsAndGoesOnTheUsersChannel) {
  auto p = std::get<UploadProgress>(round_trip(UploadProgress{77, 9, 65536, 26214400}));
  EXPECT_EQ(p.upload, 77);
  EXPECT_EQ(p.user, 9);
  EXPECT_EQ(p.received, 65536);
  EXPECT_EQ(p.total, 26214400);
  EXPECT_FALSE(p.final());
  EXPECT_TRUE((UploadProgress{77, 9, 5, 5}).final());
  EXPECT_EQ(bus::channel_for(UploadProgress{77, 9, 1, 5}, "parley:"), "parley:u:9");
  EXPECT_FALSE(bus::decode(R"({"v":1,"i":1,"n":1,"t":"up","e":{"upload":1,"user":2,"received":6,"total":5}})"));
}

TEST(EventCodec, MessageAttachmentsRoundTrip) {
  MessageCreated e;
  e.message = sample_message(false);
  Upload u;
  u.id = 5;
  u.uploader = 7;
  u.filename = "r\xC3\xA9sum\xC3\xA9.pdf";
  u.content_type = "application/pdf";
  u.size = 1234;
  u.sha256 = std::string(64, 'a');
  u.created_at = 1795000000000;
  u.complete = true;
  u.url = "/api/uploads/5?exp=1&sig=ab";
  e.message.attachments = {u, u};
  e.message.attachments[1].id = 6;
  auto r = std::get<MessageCreated>(round_trip(e));
  ASSERT_EQ(r.message.attachments.size(), 2u);
  const auto& a = r.message.attachments[0];
  EXPECT_EQ(a.id, 5);
  EXPECT_EQ(a.uploader, 7);
  EXPECT_EQ(a.filename, u.filename);
  EXPECT_EQ(a.content_type, u.content_type);
  EXPECT_EQ(a.size, 1234);
  EXPECT_EQ(a.sha256, u.sha256);
  EXPECT_EQ(a.url, u.url);
  EXPECT_TRUE(a.file_key.empty());  // never carried
  EXPECT_EQ(r.message.attachments[1].id, 6);
}
