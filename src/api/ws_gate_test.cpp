// WsGate against an in-memory store: the upgrade decision before any socket exists.
#include "api/ws_gate.h"

#include <gtest/gtest.h>

#include "storage/sqlite/sqlite_store.h"

using namespace parley;
using parley::api::UpgradeRequest;
using parley::api::WsGate;
using parley::api::WsGateOptions;

namespace {

class WsGateTest : public ::testing::Test {
 protected:
  storage::SqliteStore store{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  chat::ChatService chat{store};
  auth::JwtCodec jwt{std::string(32, 'k'), 3600, store.database_id()};
  api::KnownUsers known{chat};
  Id alice = chat.create_user("alice", "h").id;
  Id bob = chat.create_user("bob", "h").id;
  Id room = chat.create_group(alice, "r", {}).room.id;

  std::string token(Id u, std::int64_t version = 0) const { return jwt.issue(u, version, now_ms()); }
  UpgradeRequest chatroom(Id u, Id r) const {
    return {"/api/ws?room_id=" + format_id(r), "Bearer " + token(u), "", "127.0.0.1:8080"};
  }
};

}  // namespace

TEST_F(WsGateTest, AMemberIsAdmittedToTheRoom) {
  WsGate gate(chat, jwt, known, WsGateOptions{});
  auto a = gate.admit(chatroom(alice, room));
  EXPECT_TRUE(a.accepted) << a.refusal.body;
  EXPECT_FALSE(a.sidebar);
  EXPECT_EQ(a.user, alice);
  EXPECT_EQ(a.room, room);
}

TEST_F(WsGateTest, UnknownRoomIs404AndANonMemberIs403) {
  WsGate gate(chat, jwt, known, WsGateOptions{});
  auto unknown = gate.admit(chatroom(alice, room + 100));
  EXPECT_FALSE(unknown.accepted);
  EXPECT_EQ(unknown.refusal.status, 404);
  auto outsider = gate.admit(chatroom(bob, room));
  EXPECT_FALSE(outsider.accepted);
  EXPECT_EQ(outsider.refusal.status, 403);
}

TEST_F(WsGateTest, TheBearerSchemeIsCaseInsensitive) {
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 0});
  UpgradeRequest r{"/ws", "bearer " + token(alice), "", "h"};
  EXPECT_TRUE(gate.admit(r).accepted);
  r.authorization = "Basic " + token(alice);
  EXPECT_EQ(gate.admit(r).refusal.status, 401);
}

TEST_F(WsGateTest, CooldownRefusesAQuickReconnectPerEndpoint) {
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 60000});
  EXPECT_TRUE(gate.admit(chatroom(alice, room)).accepted);
  auto again = gate.admit(chatroom(alice, room));
  EXPECT_FALSE(again.accepted);
  EXPECT_EQ(again.refusal.status, 429);
  UpgradeRequest sidebar{"/ws", "Bearer " + token(alice), "", "h"};
  EXPECT_TRUE(gate.admit(sidebar).accepted);  // another endpoint, another key
}

TEST_F(WsGateTest, TheCooldownTableIsBounded) {
  // One key fits: bob's connect evicts alice's, so alice may connect again at once.
  chat.add_member(alice, room, bob);
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 60000, 1});
  EXPECT_TRUE(gate.admit(chatroom(alice, room)).accepted);
  EXPECT_TRUE(gate.admit(chatroom(bob, room)).accepted);
  EXPECT_TRUE(gate.admit(chatroom(alice, room)).accepted);
  EXPECT_FALSE(gate.admit(chatroom(alice, room)).accepted);
}

TEST_F(WsGateTest, ARevokedTokenIsRefusedOnBothEndpointsAndAFreshOneAdmitted) {
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 0});
  UpgradeRequest sidebar{"/ws?token=" + token(alice), "", "", "h"};
  auto before = gate.admit(sidebar);
  ASSERT_TRUE(before.accepted) << before.refusal.body;
  EXPECT_EQ(before.token_version, 0);
  EXPECT_FALSE(gate.revoked(before));

  std::int64_t v = chat.revoke_tokens(alice);  // no bus here: the cache learns it as REST does
  known.raise(alice, v);
  EXPECT_TRUE(gate.revoked(before));  // a socket admitted before registers too late: closed
  EXPECT_EQ(gate.admit(sidebar).refusal.status, 401);
  EXPECT_EQ(gate.admit(chatroom(alice, room)).refusal.status, 401);

  UpgradeRequest fresh{"/ws?token=" + token(alice, v), "", "", "h"};
  auto after = gate.admit(fresh);
  EXPECT_TRUE(after.accepted) << after.refusal.body;
  EXPECT_FALSE(gate.revoked(after));
}

TEST_F(WsGateTest, ATokenNewerThanTheCacheIsCheckedAgainstStorage) {
  // Another instance revoked and issued a fresh token before this one's cache heard of it.
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 0});
  ASSERT_TRUE(gate.admit(UpgradeRequest{"/ws?token=" + token(alice), "", "", "h"}).accepted);  // cached: 0
  std::int64_t v = chat.revoke_tokens(alice);
  EXPECT_TRUE(gate.admit(UpgradeRequest{"/ws?token=" + token(alice, v), "", "", "h"}).accepted);
  EXPECT_EQ(gate.admit(UpgradeRequest{"/ws?token=" + token(alice), "", "", "h"}).refusal.status, 401);
  // A version no revocation produced is refused too (it would need the key to forge).
  EXPECT_EQ(gate.admit(UpgradeRequest{"/ws?token=" + token(alice, v + 5), "", "", "h"}).refusal.status, 401);
}

TEST_F(WsGateTest, AnotherDatabasesTokenIsRefused) {
  storage::SqliteStore other{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  ASSERT_NE(other.database_id(), store.database_id());
  auth::JwtCodec other_jwt{std::string(32, 'k'), 3600, other.database_id()};  // the same key
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 0});
  UpgradeRequest r{"/ws?token=" + other_jwt.issue(alice, 0, now_ms()), "", "", "h"};
  EXPECT_EQ(gate.admit(r).refusal.status, 401);
}

namespace {

// A cooldown store that answers what it is told and remembers what it was asked.
struct FakeCooldown final : api::CooldownStore {
  bool answer = true;
  std::vector<std::pair<std::string, std::chrono::milliseconds>> asked;
  bool pass(const std::string& key, std::chrono::milliseconds cooldown) override {
    asked.emplace_back(key, cooldown);
    return answer;
  }
};

}  // namespace

TEST_F(WsGateTest, TheCooldownIsAskedOfTheGivenStorePerUserEndpointAndRoom) {
  FakeCooldown store;
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 500}, &store);
  EXPECT_TRUE(gate.admit(chatroom(alice, room)).accepted);
  EXPECT_TRUE(gate.admit(UpgradeRequest{"/ws", "Bearer " + token(alice), "", "h"}).accepted);
  ASSERT_EQ(store.asked.size(), 2u);
  EXPECT_EQ(store.asked[0].first, format_id(alice) + "|room|" + format_id(room));
  EXPECT_EQ(store.asked[1].first, format_id(alice) + "|sidebar");
  EXPECT_EQ(store.asked[0].second, std::chrono::milliseconds(500));
  store.answer = false;
  auto refused = gate.admit(chatroom(alice, room));
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.refusal.status, 429);
  EXPECT_EQ(refused.reason, "cooldown");
  bool retry_after = false;
  for (const auto& [k, v] : refused.refusal.headers) retry_after = retry_after || (k == "Retry-After" && v == "1");
  EXPECT_TRUE(retry_after);
}

TEST_F(WsGateTest, TheCooldownStoreIsNotAskedForARefusedUpgradeNorWhenTheCooldownIsOff) {
  FakeCooldown store;
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 500}, &store);
  EXPECT_EQ(gate.admit(chatroom(bob, room)).refusal.status, 403);  // not a member
  EXPECT_EQ(gate.admit(UpgradeRequest{"/ws", "", "", "h"}).refusal.status, 401);
  EXPECT_TRUE(store.asked.empty());  // a refused attempt takes no cooldown
  WsGate off(chat, jwt, known, WsGateOptions{{}, false, 0}, &store);
  store.answer = false;
  EXPECT_TRUE(off.admit(chatroom(alice, room)).accepted);
  EXPECT_TRUE(store.asked.empty());
}

// try_admit decides on the IO thread only what needs no storage: a sidebar whose token
// version is cached, and refusals found before any read; the rest is left to admit().
TEST_F(WsGateTest, TryAdmitDecidesWithoutStorageOnlyWhatTheCacheAnswers) {
  WsGate gate(chat, jwt, known, WsGateOptions{{}, false, 500});
  UpgradeRequest sidebar{"/ws?token=" + token(alice), "", "", "h"};
  EXPECT_FALSE(gate.try_admit(sidebar));  // cold cache: storage decides
  ASSERT_TRUE(gate.admit(sidebar).accepted);
  auto again = gate.try_admit(sidebar);  // cached now; the cooldown (local) still applies
  ASSERT_TRUE(again);
  EXPECT_EQ(again->refusal.status, 429);
  WsGate no_cooldown(chat, jwt, known, WsGateOptions{{}, false, 0});
  auto quick = no_cooldown.try_admit(sidebar);
  ASSERT_TRUE(quick);
  EXPECT_TRUE(quick->accepted) << quick->refusal.body;
  EXPECT_TRUE(quick->sidebar);
  EXPECT_EQ(quick->user, alice);
  EXPECT_EQ(quick->token_version, 0);
  // A chatroom needs the membership from storage; a bad token or path is refused at once.
  EXPECT_FALSE(no_cooldown.try_admit(chatroom(alice, room)));
  auto bad = no_cooldown.try_admit(UpgradeRequest{"/ws?token=x.y.z", "", "", "h"});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->refusal.status, 401);
  auto nowhere = no_cooldown.try_admit(UpgradeRequest{"/elsewhere", "", "", "h"});
  ASSERT_TRUE(nowhere);
  EXPECT_EQ(nowhere->refusal.status, 404);
  // A revocation the cache knows refuses without storage.
  known.raise(alice, chat.revoke_tokens(alice));
  auto revoked = no_cooldown.try_admit(sidebar);
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->refusal.status, 401);
  // A shared cooldown store is asked over the network: never on the IO thread.
  FakeCooldown store;
  WsGate shared(chat, jwt, known, WsGateOptions{{}, false, 500}, &store);
  UpgradeRequest bobs{"/ws?token=" + token(bob), "", "", "h"};
  ASSERT_TRUE(shared.admit(bobs).accepted);
  EXPECT_FALSE(shared.try_admit(bobs));
  EXPECT_EQ(store.asked.size(), 1u);
}
