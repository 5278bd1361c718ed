#include "net/http_request.h"

#include <gtest/gtest.h>

#include <boost/beast/http/error.hpp>

using namespace parley;
namespace http = boost::beast::http;

namespace {
net::HeadStep feed(net::RequestParser& p, std::string_view data, std::size_t& parsed) {
  return net::feed_head(p, data, parsed);
}
}  // namespace

TEST(FeedHead, NeedsTheWholeHeaderAndLeavesTheBodyUnread) {
  std::string req = "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  std::size_t head = req.find("\r\n\r\n") + 4;
  // Byte by byte: need_more until the empty line has arrived, then done, with `parsed` at the
  // end of the header — the body is left for the caller.
  net::RequestParser p;
  std::size_t parsed = 0;
  for (std::size_t n = 1; n < head; ++n) {
    auto step = feed(p, std::string_view(req).substr(0, n), parsed);
    ASSERT_EQ(step.status, net::HeadStep::need_more) << n;
    ASSERT_LE(parsed, n);
  }
  auto step = feed(p, req, parsed);
  ASSERT_EQ(step.status, net::HeadStep::done);
  EXPECT_EQ(parsed, head);
  EXPECT_TRUE(p.is_header_done());
  EXPECT_FALSE(p.is_done());
  ASSERT_TRUE(p.content_length());
  EXPECT_EQ(*p.content_length(), 5u);
}

TEST(FeedHead, AmbiguousFramingIsRefusedByTheCheckAfterTheHeader) {
  std::string req =
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  net::RequestParser p;
  std::size_t parsed = 0;
  auto step = feed(p, req, parsed);
  EXPECT_EQ(step.status, net::HeadStep::refused);
  EXPECT_FALSE(step.ec);
  EXPECT_EQ(step.framing_error, "Transfer-Encoding must end with chunked");

  net::RequestParser q;
  parsed = 0;
  step = feed(q, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", parsed);
  EXPECT_EQ(step.status, net::HeadStep::refused);
  EXPECT_EQ(step.framing_error, "obs-folded header lines are not accepted");
}

TEST(FeedHead, ParserErrorsAreRefusalsWithTheirCode) {
  net::RequestParser p;
  p.body_limit(10);
  std::size_t parsed = 0;
  auto step = feed(p, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", parsed);
  EXPECT_EQ(step.status, net::HeadStep::refused);
  EXPECT_EQ(step.ec, http::error::body_limit);

  net::RequestParser q;
  parsed = 0;
  step = feed(q, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", parsed);
  EXPECT_EQ(step.status, net::HeadStep::refused);
  EXPECT_EQ(step.ec, http::error::multiple_content_length);

  net::RequestParser r;
  parsed = 0;
  step = feed(r, "NOT HTTP\r\n\r\n", parsed);
  EXPECT_EQ(step.status, net::HeadStep::refused);
  EXPECT_TRUE(step.ec);
}

TEST(FeedHead, ToApiRequestCarriesMethodTargetAuthorizationAndBody) {
  std::string req =
      "POST /api/chatrooms/1/messages?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}";
  net::RequestParser p;
  std::size_t parsed = 0;
  ASSERT_EQ(feed(p, req, parsed).status, net::HeadStep::done);
  boost::beast::error_code ec;
  std::string_view body = std::string_view(req).substr(parsed);
  p.put(boost::asio::const_buffer(body.data(), body.size()), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(p.is_done());
  auto r = net::to_api_request(p.get(), "192.0.2.1");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/api/chatrooms/1/messages?x=1");
  EXPECT_EQ(r.authorization, "Bearer t");
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.remote_ip, "192.0.2.1");
}
