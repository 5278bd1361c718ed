#include "api/router.h"

#include <gtest/gtest.h>

using R = parley::api::Router<int>;

TEST(Router, MatchesAndCaptures) {
  R r;
  r.add("GET", "/api/chatrooms/:id", 1);
  r.add("POST", "/api/chatrooms/:id/members", 2);
  r.add("DELETE", "/api/chatrooms/:id/members/:user_id", 3);
  auto m = r.match("DELETE", R::split("/api/chatrooms/7/members/9"));
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->handler, 3);
  EXPECT_EQ(m.params, (std::vector<std::string>{"7", "9"}));
}

TEST(Router, MethodMismatchAndUnknown) {
  R r;
  r.add("GET", "/api/chatrooms/:id", 1);
  auto m = r.match("PUT", R::split("/api/chatrooms/7"));
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.method_mismatch);
  auto u = r.match("GET", R::split("/api/nothing"));
  EXPECT_EQ(u.route, nullptr);
  EXPECT_FALSE(u.method_mismatch);
}

TEST(Router, LiteralBeforeParameterWhenAddedFirst) {
  R r;
  r.add("GET", "/api/messages/latest", 1);
  r.add("GET", "/api/messages/:id", 2);
  EXPECT_EQ(r.match("GET", R::split("/api/messages/latest")).route->handler, 1);
  EXPECT_EQ(r.match("GET", R::split("/api/messages/5")).route->handler, 2);
}
