// KnownUsers: the token-version cache REST and the WebSocket gate check every token against.
#include "api/known_users.h"

#include <gtest/gtest.h>

#include <atomic>

#include "storage/sqlite/sqlite_store.h"

using namespace parley;

namespace {

// Counts the reads that reach storage (the cache's misses).
struct CountingStore : chat::Store {
  explicit CountingStore(chat::Store& s) : inner(s) {}
  void write(const std::function<void(chat::Tx&)>& fn) override { inner.write(fn); }
  void read(const std::function<void(chat::Tx&)>& fn) override {
    ++reads;
    inner.read(fn);
  }
  bool healthy() override { return inner.healthy(); }
  const std::string& database_id() const override { return inner.database_id(); }
  chat::Store& inner;
  std::atomic<int> reads{0};
};

struct KnownUsersTest : ::testing::Test {
  storage::SqliteStore sqlite{storage::SqliteOptions{":memory:", 1, 256, false, {}}};
  CountingStore store{sqlite};
  chat::ChatService chat{store};
  Id alice = chat.create_user("alice", "h").id;
  Id bob = chat.create_user("bob", "h").id;
};

}  // namespace

TEST_F(KnownUsersTest, ACheckedTokenCostsOneReadThenLookupsOnly) {
  api::KnownUsers known(chat);
  int before = store.reads;
  EXPECT_TRUE(known.token_valid(alice, 0));
  EXPECT_EQ(store.reads, before + 1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(known.token_valid(alice, 0));
  EXPECT_TRUE(known.exists(alice));
  EXPECT_EQ(store.reads, before + 1);
}

TEST_F(KnownUsersTest, UnknownUsersAreRefusedAndNotRemembered) {
  api::KnownUsers known(chat);
  EXPECT_FALSE(known.token_valid(424242, 0));
  EXPECT_FALSE(known.exists(424242));
  EXPECT_EQ(known.size(), 0u);
}

TEST_F(KnownUsersTest, ARevocationRefusesOlderTokensWithoutAStorageRead) {
  api::KnownUsers known(chat);
  ASSERT_TRUE(known.token_valid(alice, 0));
  ASSERT_TRUE(known.token_valid(bob, 0));
  std::int64_t v = chat.revoke_tokens(alice);
  // Until told, the cache still has version 0: what raise()/on_event() are for.
  known.on_event(chat::Event{chat::TokensRevoked{alice, v}});
  int before = store.reads;
  EXPECT_FALSE(known.token_valid(alice, 0));
  EXPECT_TRUE(known.known_revoked(alice, 0));
  EXPECT_TRUE(known.token_valid(alice, v));  // a fresh login's token works at once
  EXPECT_FALSE(known.known_revoked(alice, v));
  EXPECT_TRUE(known.token_valid(bob, 0));
  EXPECT_EQ(store.reads, before);
  // Other events change nothing.
  known.on_event(chat::Event{chat::MemberLeft{1, alice, 0}});
  EXPECT_TRUE(known.token_valid(alice, v));
}

TEST_F(KnownUsersTest, AVersionNeverGoesBack) {
  api::KnownUsers known(chat);
  known.raise(alice, 3);
  known.raise(alice, 1);  // a late event, or a read that began before the revocation
  EXPECT_FALSE(known.token_valid(alice, 1));
  EXPECT_TRUE(known.known_revoked(alice, 2));
  EXPECT_FALSE(known.known_revoked(alice, 3));
}

TEST_F(KnownUsersTest, ATokenNewerThanTheCacheIsCheckedInStorage) {
  // Revoked elsewhere (another instance) before this cache heard of it.
  api::KnownUsers known(chat);
  ASSERT_TRUE(known.token_valid(alice, 0));
  std::int64_t v = chat.revoke_tokens(alice);
  int before = store.reads;
  EXPECT_TRUE(known.token_valid(alice, v));
  EXPECT_EQ(store.reads, before + 1);
  EXPECT_FALSE(known.token_valid(alice, 0));  // and the cache learned the new version
  EXPECT_FALSE(known.token_valid(alice, v + 1));  // no revocation made that one
}

TEST_F(KnownUsersTest, TheCacheIsBoundedLeastRecentlyUsedFirst) {
  api::KnownUsers known(chat, 1);
  ASSERT_TRUE(known.token_valid(alice, 0));
  ASSERT_TRUE(known.token_valid(bob, 0));  // evicts alice
  EXPECT_EQ(known.size(), 1u);
  int before = store.reads;
  EXPECT_TRUE(known.token_valid(bob, 0));
  EXPECT_EQ(store.reads, before);
  EXPECT_TRUE(known.token_valid(alice, 0));  // forgotten: read again
  EXPECT_EQ(store.reads, before + 1);
  EXPECT_FALSE(known.known_revoked(bob, 0));  // evicted now: never blocks, says "not known"
}
