#include "api/login_guard.h"

#include <gtest/gtest.h>

using parley::api::LoginGuard;
using namespace std::chrono_literals;

TEST(LoginGuard, FailuresPerUsernameRunOutThenRefill) {
  LoginGuard g(3, 0);  // 3 failures per minute per username, per IP off
  auto t = LoginGuard::Clock::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(g.check("alice", "ip" + std::to_string(i), t), 0);
    g.failed("alice", "ip" + std::to_string(i), t);  // from different addresses
  }
  int wait = g.check("alice", "ip9", t);
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 20);                     // one attempt back after 60 s / 3
  EXPECT_EQ(g.check("bob", "ip0", t), 0);  // per username
  EXPECT_EQ(g.check("alice", "ip9", t + 20s), 0);
}

TEST(LoginGuard, FailuresPerIpCoverManyUsernames) {
  LoginGuard g(0, 2);
  auto t = LoginGuard::Clock::now();
  g.failed("a", "1.2.3.4", t);
  g.failed("b", "1.2.3.4", t);
  EXPECT_GE(g.check("c", "1.2.3.4", t), 1);
  EXPECT_EQ(g.check("c", "5.6.7.8", t), 0);
}

TEST(LoginGuard, OnlyFailuresSpendAndZeroIsOff) {
  LoginGuard g(1, 1);
  auto t = LoginGuard::Clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(g.check("a", "ip", t), 0);  // checks alone spend nothing
  LoginGuard off(0, 0);
  for (int i = 0; i < 100; ++i) off.failed("a", "ip", t);
  EXPECT_EQ(off.check("a", "ip", t), 0);
}
