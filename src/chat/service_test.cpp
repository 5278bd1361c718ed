// ChatService on each store (an in-memory SQLite one, and a PostgreSQL database when
// PARLEY_TEST_PG_URL names a server): seq assignment, idempotency, watermarks, unread math and
// the authorization rules.
#include "chat/service.h"

#include <gtest/gtest.h>

#include "chat/read_state.h"
#include "chat/validation.h"
#include "common/error.h"
#include "storage/sqlite/sqlite_store.h"
#include "storage/testing/test_database.h"

using namespace parley;
using namespace parley::chat;

namespace {

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorKind::Unavailable;
}

class ServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      store = std::make_unique<storage::SqliteStore>(storage::SqliteOptions{":memory:", 1, 256, false, {}});
    } else {
      db = storage::testing::make_test_database(GetParam());
      if (!db) GTEST_SKIP() << "PARLEY_TEST_PG_URL is not set (scripts/with-postgres.sh sets it)";
      store = db->open();
    }
    chat = std::make_unique<ChatService>(*store);
    alice = chat->create_user("alice", "h").id;
    bob = chat->create_user("bob", "h").id;
    carol = chat->create_user("carol", "h").id;
  }
  std::unique_ptr<storage::testing::TestDatabase> db;
  std::unique_ptr<Store> store;
  std::unique_ptr<ChatService> chat;
  Id alice = 0, bob = 0, carol = 0;
  // The room's members with their watermarks, as storage has them (for tick_of).
  std::vector<MemberUser> store_members(Id room) {
    std::vector<MemberUser> out;
    store->read([&](Tx& tx) { out = tx.active_members(room); });
    return out;
  }
};

std::string backend_name(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, ServiceTest, ::testing::ValuesIn(storage::testing::backends()), backend_name);

TEST_P(ServiceTest, SeqIsGapFreePerRoom) {
  Id r1 = chat->create_group(alice, "one", {bob}).room.id;
  Id r2 = chat->create_group(alice, "two", {}).room.id;
  EXPECT_EQ(chat->send(alice, r1, "a", {}).message.seq, 1);
  EXPECT_EQ(chat->send(bob, r1, "b", {}).message.seq, 2);
  EXPECT_EQ(chat->send(alice, r2, "c", {}).message.seq, 1);
  EXPECT_EQ(chat->send(alice, r1, "d", {}).message.seq, 3);
}

TEST_P(ServiceTest, ClientMsgIdIsIdempotentPerSenderAndRoom) {
  Id r = chat->create_group(alice, "r", {bob}).room.id;
  auto first = chat->send(alice, r, "hi", std::string("k1"));
  auto again = chat->send(alice, r, "hi (retry)", std::string("k1"));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.message.id, first.message.id);
  EXPECT_EQ(again.message.content, "hi");
  EXPECT_TRUE(chat->send(bob, r, "hi", std::string("k1")).created);  // another sender
  EXPECT_EQ(chat->get_room(alice, r).room.last_seq, 2);
}

TEST_P(ServiceTest, UnreadExcludesOwnMessagesAndWatermarkIsMonotonic) {
  Id r = chat->create_group(alice, "r", {bob}).room.id;
  auto m1 = chat->send(alice, r, "1", {}).message;
  chat->send(alice, r, "2", {});
  auto m3 = chat->send(alice, r, "3", {}).message;
  EXPECT_EQ(chat->get_room(alice, r).unread_count, 0);
  EXPECT_EQ(chat->get_room(bob, r).unread_count, 3);
  auto rd = chat->read_one(bob, m3.id);
  EXPECT_EQ(rd.up_to_seq, 3);
  EXPECT_EQ(rd.unread_count, 0);
  EXPECT_EQ(rd.marked, 3);
  auto back = chat->read_one(bob, m1.id);  // never backwards
  EXPECT_EQ(back.up_to_seq, 3);
  EXPECT_FALSE(back.moved);
  chat->send(bob, r, "4", {});
  EXPECT_EQ(chat->get_room(alice, r).unread_count, 1);
  EXPECT_EQ(chat->first_unread(alice, r).message->seq, 4);
}

TEST_P(ServiceTest, JoinerStartsReadAtLastSeq) {
  Id r = chat->create_group(alice, "r", {}).room.id;
  chat->send(alice, r, "1", {});
  chat->send(alice, r, "2", {});
  chat->add_member(alice, r, carol);
  EXPECT_EQ(chat->get_room(carol, r).unread_count, 0);
  chat->send(alice, r, "3", {});
  EXPECT_EQ(chat->get_room(carol, r).unread_count, 1);
}

TEST_P(ServiceTest, MembershipRules) {
  Id r = chat->create_group(alice, "r", {bob}).room.id;
  EXPECT_EQ(kind_of([&] { chat->get_room(carol, r); }), ErrorKind::Forbidden);
  EXPECT_EQ(kind_of([&] { chat->send(carol, r, "x", {}); }), ErrorKind::Forbidden);
  EXPECT_EQ(kind_of([&] { chat->get_room(alice, 9999); }), ErrorKind::NotFound);
  chat->add_member(bob, r, carol);                                                        // any member may add
  EXPECT_EQ(kind_of([&] { chat->remove_member(bob, r, carol); }), ErrorKind::Forbidden);  // only the creator
  chat->remove_member(alice, r, carol);
  EXPECT_EQ(kind_of([&] { chat->get_room(carol, r); }), ErrorKind::Forbidden);
  chat->remove_member(bob, r, bob);  // self-leave
  EXPECT_EQ(kind_of([&] { chat->get_room(bob, r); }), ErrorKind::Forbidden);
}

TEST_P(ServiceTest, DirectRoomsAreUniqueAndFixed) {
  auto [a, created] = chat->create_direct(alice, bob);
  auto [b, again] = chat->create_direct(bob, alice);
  EXPECT_TRUE(created);
  EXPECT_FALSE(again);
  EXPECT_EQ(a.room.id, b.room.id);
  EXPECT_EQ(kind_of([&] { chat->add_member(alice, a.room.id, carol); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { chat->remove_member(alice, a.room.id, alice); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { chat->create_direct(alice, alice); }), ErrorKind::BadInput);
}

TEST_P(ServiceTest, BulkReadIsAllOrNothing) {
  Id r1 = chat->create_group(alice, "one", {bob}).room.id;
  Id r2 = chat->create_group(alice, "two", {}).room.id;
  auto m1 = chat->send(alice, r1, "x", {}).message;
  auto m2 = chat->send(alice, r2, "y", {}).message;
  EXPECT_EQ(kind_of([&] { chat->read_bulk(bob, {m1.id, m2.id}); }), ErrorKind::Forbidden);
  EXPECT_EQ(chat->get_room(bob, r1).unread_count, 1);  // nothing marked
  EXPECT_EQ(kind_of([&] { chat->read_bulk(bob, {m1.id, 99999}); }), ErrorKind::NotFound);
  auto res = chat->read_bulk(bob, {m1.id});
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].unread_count, 0);
}

TEST_P(ServiceTest, ReadByWhoListsCurrentMembersButTheSender) {
  Id r = chat->create_group(alice, "r", {bob, carol}).room.id;
  auto m = chat->send(alice, r, "x", {}).message;
  chat->read_one(bob, m.id);
  auto w = chat->read_by_who(alice, m.id);
  EXPECT_EQ(w.member_count, 2u);
  ASSERT_EQ(w.read_by.size(), 1u);
  EXPECT_EQ(w.read_by[0].user.id, bob);
  ASSERT_EQ(w.unread_by.size(), 1u);
  EXPECT_EQ(w.unread_by[0].id, carol);
  chat->remove_member(alice, r, carol);
  EXPECT_EQ(chat->read_by_who(alice, m.id).member_count, 1u);
}

TEST_P(ServiceTest, HistoryPaging) {
  Id r = chat->create_group(alice, "r", {}).room.id;
  for (int i = 0; i < 10; ++i) chat->send(alice, r, "m" + std::to_string(i + 1), {});
  auto newest = chat->history(alice, r, {}, {}, 3);
  ASSERT_EQ(newest.messages.size(), 3u);
  EXPECT_EQ(newest.messages.front().seq, 8);
  EXPECT_TRUE(newest.has_more);
  auto fwd = chat->history(alice, r, 8, {}, 5);
  ASSERT_EQ(fwd.messages.size(), 2u);
  EXPECT_FALSE(fwd.has_more);
  auto window = chat->history(alice, r, 2, 6, 2);
  ASSERT_EQ(window.messages.size(), 2u);
  EXPECT_EQ(window.messages[0].seq, 3);
  EXPECT_TRUE(window.has_more);
  EXPECT_EQ(kind_of([&] { chat->history(alice, r, {}, {}, 201); }), ErrorKind::BadInput);
}

TEST_P(ServiceTest, AnUnknownCallerCannotCreateRooms) {
  EXPECT_EQ(kind_of([&] { chat->create_group(424242, "r", {}); }), ErrorKind::Unauthorized);
  EXPECT_EQ(kind_of([&] { chat->create_direct(424242, alice); }), ErrorKind::Unauthorized);
}

namespace {
struct RecordingPublisher : EventPublisher {
  void publish(EventPtr e) override { events.push_back(std::move(e)); }
  std::vector<EventPtr> events;
};
}  // namespace

TEST(ServiceEvents, APublishedMessageCarriesEveryMembersWatermarkNotTheirTotals) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  RecordingPublisher pub;
  ChatService chat{store, &pub};
  std::vector<Id> u;
  for (int i = 0; i < 4; ++i) u.push_back(chat.create_user("user" + std::to_string(i), "h").id);
  Id room = chat.create_group(u[0], "big", {u[1], u[2], u[3]}).room.id;
  ASSERT_EQ(pub.events.size(), 5u);  // one MemberJoined per first member, then the room
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::holds_alternative<MemberJoined>(*pub.events[i]));
  const auto& ru = std::get<RoomUpdated>(*pub.events[4]);
  EXPECT_TRUE(ru.created);
  EXPECT_EQ(ru.name, std::optional<std::string>("big"));
  EXPECT_EQ(ru.members.size(), 4u);
  EXPECT_EQ(ru.joined, u);
  chat.send(u[1], room, "one", {});
  chat.mark_all_read(u[2], room);
  pub.events.clear();
  chat.send(u[0], room, "two", std::string("c-2"), "conn-9");
  ASSERT_EQ(pub.events.size(), 1u);
  const auto& e = std::get<MessageCreated>(*pub.events[0]);
  EXPECT_EQ(e.message.seq, 2);
  EXPECT_EQ(e.origin, "conn-9");
  ASSERT_EQ(e.members.size(), 4u);
  std::vector<std::pair<Id, Seq>> got;
  for (const auto& m : e.members) got.emplace_back(m.user, m.read_seq);
  // The sender has read its own message; u1 sent seq 1; u2 read up to 1; u3 read nothing.
  EXPECT_EQ(got, (std::vector<std::pair<Id, Seq>>{{u[0], 2}, {u[1], 1}, {u[2], 1}, {u[3], 0}}));
  pub.events.clear();
  chat.send(u[0], room, "two", std::string("c-2"));  // an idempotent retry: nothing new
  EXPECT_TRUE(pub.events.empty());
}

TEST(ServiceEvents, ARefusedWriteRollsBackAndPublishesNothing) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  RecordingPublisher pub;
  ChatService chat{store, &pub};
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id room = chat.create_group(a, "r", {}).room.id;
  pub.events.clear();
  EXPECT_EQ(kind_of([&] { chat.send(b, room, "x", {}); }), ErrorKind::Forbidden);
  EXPECT_EQ(kind_of([&] { chat.add_member(a, room, 999); }), ErrorKind::NotFound);
  EXPECT_TRUE(pub.events.empty());
  chat.add_member(a, room, b);
  chat.remove_member(a, room, b);
  ASSERT_EQ(pub.events.size(), 4u);
  EXPECT_EQ(std::get<MemberJoined>(*pub.events[0]).user, b);
  EXPECT_EQ(std::get<RoomUpdated>(*pub.events[1]).members.size(), 2u);
  EXPECT_EQ(std::get<MemberLeft>(*pub.events[2]).user, b);
  EXPECT_EQ(std::get<RoomUpdated>(*pub.events[3]).members.size(), 1u);
}

TEST(ServiceEvents, EveryMembershipChangePublishesTheRoomAsItsMembersNowSeeIt) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  RecordingPublisher pub;
  ChatService chat{store, &pub};
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id c = chat.create_user("carol", "h").id;
  auto ids = [](const RoomUpdated& e) {
    std::vector<Id> out;
    for (const auto& m : e.members) out.push_back(m.id);
    return out;
  };
  auto last = [&] { return std::get<RoomUpdated>(*pub.events.back()); };
  Id room = chat.create_group(a, "r", {b}).room.id;
  EXPECT_EQ(ids(last()), (std::vector<Id>{a, b}));
  EXPECT_EQ(last().members[1].username, "bob");
  pub.events.clear();
  chat.add_member(b, room, c);  // any member may add
  auto added = last();
  EXPECT_FALSE(added.created);
  EXPECT_EQ(added.joined, std::vector<Id>{c});
  EXPECT_EQ(ids(added), (std::vector<Id>{a, b, c}));
  pub.events.clear();
  chat.add_member(a, room, c);  // already a member: nothing changes, nothing published
  EXPECT_TRUE(pub.events.empty());
  chat.remove_member(b, room, b);  // leaves
  auto left = last();
  EXPECT_TRUE(left.joined.empty());
  EXPECT_EQ(ids(left), (std::vector<Id>{a, c}));
  pub.events.clear();
  auto [direct, created] = chat.create_direct(a, c);
  ASSERT_TRUE(created);
  auto d = last();
  EXPECT_TRUE(d.created);
  EXPECT_EQ(d.type, RoomType::Direct);
  EXPECT_EQ(d.name, std::nullopt);
  EXPECT_EQ(d.joined, (std::vector<Id>{a, c}));
  pub.events.clear();
  chat.create_direct(c, a);  // the existing one: nothing new
  EXPECT_TRUE(pub.events.empty());
  chat.remove_member(a, room, c);
  chat.remove_member(a, room, a);  // the last member: nobody left to tell
  ASSERT_EQ(pub.events.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<MemberLeft>(*pub.events.back()));
}

TEST_P(ServiceTest, ContentAndNamesKeepEveryByteOfTheirUtf8) {
  using namespace std::string_literals;  // ""s keeps the embedded U+0000
  const std::string name = "caf\xc3\xa9 \0 room"s;
  const std::string content = "a\0b \xf0\x9f\x92\xac \\x00 '\""s;
  ASSERT_EQ(name.size(), 12u);
  ASSERT_EQ(content.size(), 16u);
  Id r = chat->create_group(alice, name, {bob}).room.id;
  EXPECT_EQ(chat->get_room(bob, r).room.name, name);
  auto m = chat->send(alice, r, content, {}).message;
  EXPECT_EQ(chat->get_message(bob, m.id).content, content);
  EXPECT_EQ(chat->history(bob, r, {}, {}, 5).messages.at(0).content, content);
  EXPECT_TRUE(chat->search_users("al\0"s, 10).empty());
  EXPECT_TRUE(chat->search_users("\xff\xfe", 10).empty());
  EXPECT_EQ(chat->search_users("al", 10).size(), 1u);
}

TEST(ServiceEvents, ARevocationBumpsTheVersionAndPublishesTokensRevokedAfterTheCommit) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  RecordingPublisher pub;
  ChatService chat{store, &pub};
  Id a = chat.create_user("alice", "old-hash").id;
  Id b = chat.create_user("bob", "h").id;
  EXPECT_EQ(chat.token_version(a), 0);
  EXPECT_EQ(chat.user_auth("alice")->token_version, 0);
  pub.events.clear();

  EXPECT_EQ(chat.revoke_tokens(a), 1);
  ASSERT_EQ(pub.events.size(), 1u);
  const auto& r = std::get<TokensRevoked>(*pub.events[0]);
  EXPECT_EQ(r.user, a);
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(chat.token_version(a), 1);  // committed before it was published
  EXPECT_EQ(chat.user_auth("alice")->token_version, 1);
  EXPECT_EQ(chat.token_version(b), 0);  // nobody else's

  // A password change swaps the hash (only from the expected one) and revokes the same way.
  pub.events.clear();
  EXPECT_EQ(chat.change_password(a, "old-hash", "new-hash"), 2);
  ASSERT_EQ(pub.events.size(), 1u);
  EXPECT_EQ(std::get<TokensRevoked>(*pub.events[0]).version, 2);
  EXPECT_EQ(chat.caller_auth(a).password_hash, "new-hash");
  EXPECT_EQ(chat.caller_auth(a).token_version, 2);

  pub.events.clear();
  EXPECT_EQ(kind_of([&] { chat.change_password(a, "old-hash", "other"); }), ErrorKind::Forbidden);
  EXPECT_EQ(chat.caller_auth(a).password_hash, "new-hash");
  EXPECT_EQ(chat.token_version(a), 2);  // rolled back: no bump, no event
  EXPECT_EQ(kind_of([&] { chat.revoke_tokens(999); }), ErrorKind::Unauthorized);
  EXPECT_EQ(kind_of([&] { chat.caller_auth(999); }), ErrorKind::Unauthorized);
  EXPECT_FALSE(chat.token_version(999).has_value());
  EXPECT_TRUE(pub.events.empty());
}

TEST_P(ServiceTest, RevocationBumpsTheTokenVersionAndAPasswordChangeNeedsTheExpectedHash) {
  EXPECT_EQ(chat->token_version(alice), 0);
  EXPECT_EQ(chat->revoke_tokens(alice), 1);
  EXPECT_EQ(chat->revoke_tokens(alice), 2);
  EXPECT_EQ(chat->token_version(alice), 2);
  EXPECT_EQ(chat->user_auth("alice")->token_version, 2);
  EXPECT_EQ(chat->token_version(bob), 0);
  EXPECT_EQ(chat->change_password(alice, "h", "h2"), 3);
  EXPECT_EQ(chat->caller_auth(alice).password_hash, "h2");
  EXPECT_EQ(kind_of([&] { chat->change_password(alice, "h", "h3"); }), ErrorKind::Forbidden);
  EXPECT_EQ(chat->caller_auth(alice).password_hash, "h2");
  EXPECT_EQ(chat->token_version(alice), 3);  // the refused change rolled back
  EXPECT_FALSE(chat->token_version(999).has_value());
  EXPECT_EQ(kind_of([&] { chat->revoke_tokens(999); }), ErrorKind::Unauthorized);
}

// Delivered (grey double ticks): a per-(room, user) watermark, monotonic, clamped to last_seq,
// raised by every read; MessageDelivered only when it moved.
TEST_P(ServiceTest, DeliveredIsMonotonicClampedAndRaisedByReads) {
  Id r = chat->create_group(alice, "r", {bob, carol}).room.id;
  auto m1 = chat->send(alice, r, "1", {}).message;
  auto m2 = chat->send(alice, r, "2", {}).message;
  chat->send(alice, r, "3", {});
  auto d = chat->mark_delivered(bob, r, 2);
  EXPECT_TRUE(d.moved);
  EXPECT_EQ(d.up_to_seq, 2);
  d = chat->mark_delivered(bob, r, 1);  // backwards: no move
  EXPECT_FALSE(d.moved);
  EXPECT_EQ(d.up_to_seq, 2);
  d = chat->mark_delivered(bob, r, 2);  // the same: no move
  EXPECT_FALSE(d.moved);
  d = chat->mark_delivered(bob, r, 1000);  // clamped to last_seq
  EXPECT_TRUE(d.moved);
  EXPECT_EQ(d.up_to_seq, 3);
  EXPECT_FALSE(chat->mark_delivered(bob, r, 1000).moved);  // already at last_seq
  EXPECT_FALSE(chat->mark_delivered(bob, r, 0).moved);
  // A read implies delivered: carol never sent `delivered`, her read counts as one.
  chat->read_one(carol, m2.id);
  auto w = chat->read_by_who(alice, m1.id);
  ASSERT_EQ(w.delivered_to.size(), 2u);
  EXPECT_EQ(w.delivered_to[0].user.id, bob);
  EXPECT_EQ(w.delivered_to[1].user.id, carol);
  EXPECT_FALSE(chat->mark_delivered(carol, r, 2).moved);  // below her read watermark
  EXPECT_TRUE(chat->mark_delivered(carol, r, 3).moved);
  // Delivered is not read: bob read nothing.
  EXPECT_EQ(chat->get_room(bob, r).unread_count, 3);
}

TEST_P(ServiceTest, DeliveredRefusesNegativeUnknownRoomAndNonMembers) {
  Id r = chat->create_group(alice, "r", {bob}).room.id;
  chat->send(alice, r, "1", {});
  EXPECT_EQ(kind_of([&] { chat->mark_delivered(bob, r, -1); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { chat->mark_delivered(bob, 987654, 1); }), ErrorKind::NotFound);
  EXPECT_EQ(kind_of([&] { chat->mark_delivered(carol, r, 1); }), ErrorKind::Forbidden);
  chat->remove_member(alice, r, bob);
  EXPECT_EQ(kind_of([&] { chat->mark_delivered(bob, r, 1); }), ErrorKind::Forbidden);
}

TEST_P(ServiceTest, ReadByWhoDeliveredToExcludesTheSenderAndKeepsTheFirstTime) {
  Id r = chat->create_group(alice, "r", {bob, carol}).room.id;
  auto m1 = chat->send(alice, r, "1", {}).message;
  auto w = chat->read_by_who(alice, m1.id);
  EXPECT_TRUE(w.delivered_to.empty());  // stored, delivered to nobody yet: one grey tick
  EXPECT_EQ(tick_of(m1.seq, alice, store_members(r)), Tick::Sent);
  chat->mark_delivered(bob, r, 1);
  w = chat->read_by_who(alice, m1.id);
  ASSERT_EQ(w.delivered_to.size(), 1u);
  EXPECT_EQ(w.delivered_to[0].user.id, bob);
  EXPECT_EQ(w.delivered_to[0].user.username, "bob");
  TimeMs bob_at = w.delivered_to[0].delivered_at;
  EXPECT_GE(bob_at, m1.created_at);
  chat->send(carol, r, "2", {});  // carol's send moves her watermarks past m1 (no frame)
  auto m3 = chat->send(alice, r, "3", {}).message;
  chat->mark_delivered(bob, r, 3);   // a later move does not change m1's time
  chat->read_one(bob, m3.id);        // nor does a later read
  w = chat->read_by_who(alice, m1.id);
  ASSERT_EQ(w.delivered_to.size(), 2u);
  EXPECT_EQ(w.delivered_to[0].delivered_at, bob_at);
  for (const auto& d : w.delivered_to) EXPECT_NE(d.user.id, alice);  // the sender excluded
  EXPECT_EQ(tick_of(m1.seq, alice, store_members(r)), Tick::Read);
  // m3: read by bob, delivered to carol? Not yet: carol's watermarks are at 2.
  EXPECT_EQ(tick_of(m3.seq, alice, store_members(r)), Tick::Sent);
  chat->mark_delivered(carol, r, 3);
  EXPECT_EQ(tick_of(m3.seq, alice, store_members(r)), Tick::Delivered);
  w = chat->read_by_who(alice, m3.id);
  EXPECT_EQ(w.delivered_to.size(), w.member_count);  // grey double tick
  EXPECT_LT(w.read_by.size(), w.member_count);       // not blue yet
}

TEST(ServiceEvents, DeliveredPublishesOnlyWhenTheWatermarkMovesAndReadsPublishItToo) {
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  RecordingPublisher pub;
  ChatService chat{store, &pub};
  Id a = chat.create_user("alice", "h").id;
  Id b = chat.create_user("bob", "h").id;
  Id c = chat.create_user("carol", "h").id;
  Id room = chat.create_group(a, "r", {b, c}).room.id;
  chat.send(a, room, "1", {});
  auto m2 = chat.send(a, room, "2", {}).message;
  pub.events.clear();
  chat.mark_delivered(b, room, 1);
  ASSERT_EQ(pub.events.size(), 1u);
  const auto& d = std::get<MessageDelivered>(*pub.events[0]);
  EXPECT_EQ(d.room, room);
  EXPECT_EQ(d.user, b);
  EXPECT_EQ(d.up_to_seq, 1);
  EXPECT_EQ(d.last_seq, 2);
  EXPECT_EQ(d.members, (std::vector<Id>{a, b, c}));
  EXPECT_GT(d.delivered_at, 0);
  pub.events.clear();
  chat.mark_delivered(b, room, 1);  // no move, no event
  chat.mark_delivered(b, room, 0);
  EXPECT_TRUE(pub.events.empty());
  // A read past the delivered watermark: MessageDelivered first, then MessageRead.
  chat.read_one(b, m2.id);
  ASSERT_EQ(pub.events.size(), 2u);
  EXPECT_EQ(std::get<MessageDelivered>(*pub.events[0]).up_to_seq, 2);
  EXPECT_EQ(std::get<MessageRead>(*pub.events[1]).newest_read.seq, 2);
  pub.events.clear();
  // A read below the delivered watermark moves only the read one.
  chat.mark_delivered(c, room, 2);
  pub.events.clear();
  chat.mark_all_read(c, room);
  ASSERT_EQ(pub.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<MessageRead>(*pub.events[0]));
  pub.events.clear();
  // A refused call publishes nothing.
  EXPECT_EQ(kind_of([&] { chat.mark_delivered(424242, room, 1); }), ErrorKind::Forbidden);
  EXPECT_TRUE(pub.events.empty());
}

// Reactions: idempotent add/remove, the reactions map on message reads, events only for
// changes, the per-message emoji bound and the refusals, on both stores.
TEST_P(ServiceTest, ReactionsAreIdempotentAndShowOnMessages) {
  RecordingPublisher pub;
  ChatService svc{*store, &pub};
  Id r = svc.create_group(alice, "r", {bob, carol}).room.id;
  auto m1 = svc.send(alice, r, "1", std::string("c1")).message;
  auto m2 = svc.send(alice, r, "2", {}).message;
  EXPECT_TRUE(m1.reactions.empty());
  pub.events.clear();
  const std::string up = "\xF0\x9F\x91\x8D", heart = "\xE2\x9D\xA4\xEF\xB8\x8F";
  auto rs = svc.react(bob, m1.id, up, true);
  EXPECT_EQ(rs, (Reactions{{up, {bob}}}));
  EXPECT_EQ(svc.react(bob, m1.id, up, true), rs);  // again: no change
  rs = svc.react(carol, m1.id, up, true);
  EXPECT_EQ(rs, (Reactions{{up, {bob, carol}}}));  // in the order they reacted
  svc.react(alice, m2.id, heart, true);
  ASSERT_EQ(pub.events.size(), 3u);  // the repeated add published nothing
  const auto& e = std::get<ReactionChanged>(*pub.events[0]);
  EXPECT_EQ(e.message, m1.id);
  EXPECT_EQ(e.room, r);
  EXPECT_EQ(e.seq, m1.seq);
  EXPECT_EQ(e.user, bob);
  EXPECT_EQ(e.emoji, up);
  EXPECT_TRUE(e.add);
  EXPECT_EQ(e.members, (std::vector<Id>{alice, bob, carol}));
  // Every read of a message carries its reactions: history (one query per page), the message,
  // resume replays, gap fills, the room's last message and an idempotent send's original.
  auto page = svc.history(carol, r, std::nullopt, std::nullopt, 50);
  ASSERT_EQ(page.messages.size(), 2u);
  EXPECT_EQ(page.messages[0].reactions, (Reactions{{up, {bob, carol}}}));
  EXPECT_EQ(page.messages[1].reactions, (Reactions{{heart, {alice}}}));
  EXPECT_EQ(svc.get_message(bob, m1.id).reactions.size(), 1u);
  EXPECT_EQ(svc.messages_after(bob, r, 0, 10).at(0).reactions, page.messages[0].reactions);
  EXPECT_EQ(svc.messages_between(r, 0, 3, 10).at(1).reactions, page.messages[1].reactions);
  EXPECT_EQ(svc.get_room(bob, r).last_message->reactions, page.messages[1].reactions);
  EXPECT_EQ(svc.send(alice, r, "1", std::string("c1")).message.reactions, page.messages[0].reactions);
  // Remove: idempotent too; the last user of an emoji takes the emoji away.
  pub.events.clear();
  rs = svc.react(bob, m1.id, up, false);
  EXPECT_EQ(rs, (Reactions{{up, {carol}}}));
  EXPECT_EQ(svc.react(bob, m1.id, up, false), rs);
  EXPECT_TRUE(svc.react(carol, m1.id, up, false).empty());
  EXPECT_TRUE(svc.react(carol, m1.id, heart, false).empty());  // never added
  ASSERT_EQ(pub.events.size(), 2u);
  const auto& rm1 = std::get<ReactionChanged>(*pub.events[0]);
  EXPECT_FALSE(rm1.add);
  // Re-adding after a remove: the row's stamp grows along its changes (receivers order by it).
  svc.react(bob, m1.id, up, true);
  const auto& re = std::get<ReactionChanged>(*pub.events.back());
  EXPECT_GT(re.at, rm1.at);
  EXPECT_EQ(svc.history(alice, r, std::nullopt, std::nullopt, 50).messages[0].reactions, (Reactions{{up, {bob}}}));
}

TEST_P(ServiceTest, ReactionsRefuseNonMembersUnknownMessagesBadEmojiAndTooMany) {
  Id r = chat->create_group(alice, "r", {bob}).room.id;
  auto m = chat->send(alice, r, "1", {}).message;
  const std::string up = "\xF0\x9F\x91\x8D";
  EXPECT_EQ(kind_of([&] { chat->react(bob, 987654321, up, true); }), ErrorKind::NotFound);
  EXPECT_EQ(kind_of([&] { chat->react(carol, m.id, up, true); }), ErrorKind::Forbidden);
  EXPECT_EQ(kind_of([&] { chat->react(carol, m.id, "bad emoji", true); }), ErrorKind::Forbidden);  // 403 first
  EXPECT_EQ(kind_of([&] { chat->react(bob, m.id, "ab", true); }), ErrorKind::BadInput);
  EXPECT_EQ(kind_of([&] { chat->react(bob, m.id, "", false); }), ErrorKind::BadInput);
  chat->react(bob, m.id, up, true);
  chat->remove_member(alice, r, bob);
  EXPECT_EQ(kind_of([&] { chat->react(bob, m.id, up, false); }), ErrorKind::Forbidden);
  EXPECT_EQ(kind_of([&] { chat->get_message(bob, m.id); }), ErrorKind::Forbidden);
  // At most kMaxReactionEmoji (64) distinct emoji on one message: the 65th is refused (409),
  // another user's reaction with an emoji already there still passes. (bob's 👍 stays: one.)
  for (std::size_t i = 0; i + 1 < kMaxReactionEmoji; ++i) chat->react(alice, m.id, std::string(1, static_cast<char>('!' + i)), true);
  try {
    chat->react(alice, m.id, "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", true);
    ADD_FAILURE() << "the 65th emoji was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Conflict);
    EXPECT_EQ(e.code(), "too_many_reactions");
  }
  chat->add_member(alice, r, carol);
  EXPECT_EQ(chat->react(carol, m.id, "A", true).at("A").size(), 2u);
  EXPECT_EQ(chat->get_message(alice, m.id).reactions.size(), kMaxReactionEmoji);
}
