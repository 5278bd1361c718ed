#include "common/bounded_lru.h"

#include <gtest/gtest.h>

#include <string>

using parley::BoundedLru;

namespace {
auto zero = [] { return 0; };
}

TEST(BoundedLru, GetOrInsertInsertsOnceThenReturnsTheSameValue) {
  BoundedLru<std::string, int> m(4);
  bool inserted = false;
  m.get_or_insert(
      "a", [] { return 7; }, &inserted) += 1;
  EXPECT_TRUE(inserted);
  EXPECT_EQ(m.get_or_insert(
                "a", [] { return 100; }, &inserted),
            8);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(m.size(), 1u);
}

TEST(BoundedLru, EvictsTheLeastRecentlyUsedWhenFull) {
  BoundedLru<std::string, int> m(2);
  m.get_or_insert("a", zero);
  m.get_or_insert("b", zero);
  m.get_or_insert("c", zero);  // a is the oldest
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.peek("a"), nullptr);
  EXPECT_NE(m.peek("b"), nullptr);
  EXPECT_NE(m.peek("c"), nullptr);
}

TEST(BoundedLru, TouchAndGetMakeAnEntryTheNewest) {
  BoundedLru<std::string, int> m(2);
  m.get_or_insert("a", zero);
  m.get_or_insert("b", zero);
  ASSERT_NE(m.touch("a"), nullptr);  // now b is the oldest
  m.get_or_insert("c", zero);
  EXPECT_NE(m.peek("a"), nullptr);
  EXPECT_EQ(m.peek("b"), nullptr);

  m.get_or_insert("a", zero);  // a hit counts as a use too: c is the oldest
  m.get_or_insert("d", zero);
  EXPECT_NE(m.peek("a"), nullptr);
  EXPECT_EQ(m.peek("c"), nullptr);
}

TEST(BoundedLru, PeekDoesNotChangeTheOrder) {
  BoundedLru<std::string, int> m(2);
  m.get_or_insert("a", zero);
  m.get_or_insert("b", zero);
  EXPECT_NE(m.peek("a"), nullptr);
  m.get_or_insert("c", zero);
  EXPECT_EQ(m.peek("a"), nullptr);
}

TEST(BoundedLru, TouchOfAnAbsentKeyInsertsNothing) {
  BoundedLru<std::string, int> m(2);
  EXPECT_EQ(m.touch("x"), nullptr);
  EXPECT_EQ(m.size(), 0u);
}

TEST(BoundedLru, EraseFreesTheSlot) {
  BoundedLru<std::string, int> m(2);
  m.get_or_insert("a", zero);
  m.get_or_insert("b", zero);
  EXPECT_TRUE(m.erase("a"));
  EXPECT_FALSE(m.erase("a"));
  m.get_or_insert("c", zero);
  EXPECT_NE(m.peek("b"), nullptr);  // nothing evicted: there was room
  EXPECT_EQ(m.size(), 2u);
}

TEST(BoundedLru, MaxSizeZeroHoldsOne) {
  BoundedLru<int, int> m(0);
  EXPECT_EQ(m.max_size(), 1u);
  m.get_or_insert(1, zero) = 5;
  EXPECT_EQ(*m.peek(1), 5);
  m.get_or_insert(2, zero);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.peek(1), nullptr);
}

TEST(BoundedLru, StaysBoundedUnderManyKeys) {
  BoundedLru<int, int> m(100);
  for (int i = 0; i < 10000; ++i) m.get_or_insert(i, [i] { return i; });
  EXPECT_EQ(m.size(), 100u);
  for (int i = 9900; i < 10000; ++i) ASSERT_NE(m.peek(i), nullptr) << i;
  EXPECT_EQ(m.peek(9899), nullptr);
}
