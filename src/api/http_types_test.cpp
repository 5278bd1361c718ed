#include "api/http_types.h"

#include <gtest/gtest.h>

using parley::api::bearer_token;

TEST(BearerToken, TakesTheTokenAfterTheScheme) {
  EXPECT_EQ(bearer_token("Bearer abc.def-ghi_jkl"), "abc.def-ghi_jkl");
  EXPECT_EQ(bearer_token("Bearer a+b/c~d=="), "a+b/c~d==");
}

TEST(BearerToken, TheSchemeIsCaseInsensitive) {
  EXPECT_EQ(bearer_token("bearer tok"), "tok");
  EXPECT_EQ(bearer_token("BEARER tok"), "tok");
  EXPECT_EQ(bearer_token("BeArEr tok"), "tok");
}

TEST(BearerToken, WhiteSpaceAroundTheValueAndBetweenSchemeAndTokenIsIgnored) {
  EXPECT_EQ(bearer_token("  Bearer tok \t"), "tok");
  EXPECT_EQ(bearer_token("\tBearer tok"), "tok");
  EXPECT_EQ(bearer_token("Bearer    tok"), "tok");
}

TEST(BearerToken, OtherSchemesAndMalformedValuesAreRefused) {
  EXPECT_EQ(bearer_token(""), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer    "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearertok"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer\ttok"), std::nullopt);  // RFC 6750: 1*SP
  EXPECT_EQ(bearer_token("Basic dXNlcjpwYXNz"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearex tok"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer@tok"), std::nullopt);
  EXPECT_EQ(bearer_token("tok"), std::nullopt);
}

TEST(BearerToken, TheTokenMustBeOneB64token) {
  EXPECT_EQ(bearer_token("Bearer a b"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer a,b"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer a=b"), std::nullopt);  // '=' only at the end
  EXPECT_EQ(bearer_token("Bearer ==="), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer \"tok\""), std::nullopt);
  EXPECT_EQ(bearer_token(std::string_view("Bearer a\0b", 10)), std::nullopt);
}

TEST(BearerToken, TheResultPointsIntoTheInput) {
  std::string header = "Bearer xyz";
  auto t = bearer_token(header);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->data(), header.data() + 7);
}

using parley::api::framing_error;

namespace {
// A request's header block with the given header lines.
std::string head(std::string_view lines, std::string_view version = "HTTP/1.1") {
  return "POST /api/x " + std::string(version) + "\r\nHost: x\r\n" + std::string(lines) + "\r\n";
}
}  // namespace

TEST(FramingError, UnambiguousFramingIsAccepted) {
  EXPECT_EQ(framing_error(head("")), std::nullopt);
  EXPECT_EQ(framing_error(head("Content-Length: 12\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("Transfer-Encoding: chunked\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("transfer-encoding:CHUNKED \t\r\n")), std::nullopt);
  // Repeated Content-Lengths with one value (RFC 9112 section 6.3 allows the recipient to accept).
  EXPECT_EQ(framing_error(head("Content-Length: 5\r\nContent-Length: 5\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("Content-Length: 5, 5\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("Content-Length: 5\r\nContent-Length: 05\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("X-Note: a: b\r\nAccept: */*\r\n")), std::nullopt);
  EXPECT_EQ(framing_error(head("Content-Length: 0\r\n", "HTTP/1.0")), std::nullopt);
}

TEST(FramingError, TransferEncodingMustBeChunkedAlone) {
  for (const char* te : {"chunked, identity", "identity", "xchunked", "chunkedx", "gzip", "chunked;x=1",
                         "chunked, chunked", "gzip, chunked", "identity, chunked", ", chunked", "chunked,", ""}) {
    EXPECT_NE(framing_error(head(std::string("Transfer-Encoding: ") + te + "\r\n")), std::nullopt) << te;
  }
  // Over several lines: the codings of every Transfer-Encoding line count, in order.
  EXPECT_NE(framing_error(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")), std::nullopt);
  EXPECT_EQ(*framing_error(head("Transfer-Encoding: chunked, identity\r\n")),
            "Transfer-Encoding must end with chunked");
}

TEST(FramingError, TransferEncodingWithContentLengthOrInHttp10IsRefused) {
  EXPECT_EQ(*framing_error(head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
            "Transfer-Encoding together with Content-Length");
  EXPECT_NE(framing_error(head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("Transfer-Encoding: xchunked\r\nContent-Length: 0\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("Transfer-Encoding: chunked\r\nContent-Length: x\r\n")), std::nullopt);
  EXPECT_EQ(*framing_error(head("Transfer-Encoding: chunked\r\n", "HTTP/1.0")),
            "Transfer-Encoding in an HTTP/1.0 request");
}

TEST(FramingError, ContentLengthsMustAgreeAndBeDigits) {
  EXPECT_EQ(*framing_error(head("Content-Length: 0\r\nContent-Length: 24\r\n")), "differing Content-Length values");
  EXPECT_NE(framing_error(head("Content-Length: 0, 24\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("Content-Length: 5, 5\r\nContent-Length: 6\r\n")), std::nullopt);
  for (const char* cl : {"", "-1", "+5", "5 5", "0x10", "5,", ",5", "1e3", "1234567890123456789012"}) {
    EXPECT_NE(framing_error(head(std::string("Content-Length: ") + cl + "\r\n")), std::nullopt) << cl;
  }
}

TEST(FramingError, ObsFoldAndMalformedLinesAreRefused) {
  EXPECT_EQ(*framing_error(head("X-Note: one\r\n two\r\n")), "obs-folded header lines are not accepted");
  EXPECT_NE(framing_error(head("Content-Length:\r\n 0\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("X-Note: one\r\n\ttwo\r\n")), std::nullopt);
  EXPECT_NE(framing_error("POST / HTTP/1.1\r\n Host: x\r\n\r\n"), std::nullopt);  // white space before the first field
  EXPECT_NE(framing_error(head("Transfer-Encoding : chunked\r\n")), std::nullopt);  // white space before the colon
  EXPECT_NE(framing_error(head("No colon here\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head(": empty name\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head("X-A: a\nTransfer-Encoding: identity\r\n")), std::nullopt);  // a bare LF
  EXPECT_NE(framing_error(head("X-A: a\rb\r\n")), std::nullopt);
  EXPECT_NE(framing_error(head(std::string("X-A: a\0b\r\n", 10))), std::nullopt);
}

TEST(FramingError, TheMessageNeverHoldsInputBytes) {
  std::string h = head("Transfer-Encoding: \xff\xfe-evil\r\n");
  auto e = framing_error(h);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->find("evil"), std::string_view::npos);
  EXPECT_TRUE(e->data() < h.data() || e->data() >= h.data() + h.size());
}
