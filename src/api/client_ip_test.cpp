#include "api/client_ip.h"

#include <gtest/gtest.h>

using parley::api::IpAddress;
using parley::api::TrustedProxies;

TEST(IpAddress, ParsesBothFamiliesPortsAndBrackets) {
  EXPECT_EQ(IpAddress::parse("1.2.3.4")->to_string(), "1.2.3.4");
  EXPECT_EQ(IpAddress::parse(" 1.2.3.4:8080 ")->to_string(), "1.2.3.4");
  EXPECT_EQ(IpAddress::parse("::1")->to_string(), "::1");
  EXPECT_EQ(IpAddress::parse("[2001:db8::1]:443")->to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::parse("::ffff:10.0.0.1")->to_string(), "10.0.0.1");  // mapped prints as IPv4
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "999.1.1.1", "1.2.3.4:99999", "[::1", "[::1]x", "unknown", "1.2.3.4:", "::g"})
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << bad;
}

TEST(TrustedProxies, CidrsMatchByPrefixInBothFamilies) {
  TrustedProxies t;
  ASSERT_TRUE(t.add("10.0.0.0/8"));
  ASSERT_TRUE(t.add("192.168.1.7"));
  ASSERT_TRUE(t.add("fd00::/8"));
  EXPECT_TRUE(t.contains(*IpAddress::parse("10.255.1.2")));
  EXPECT_FALSE(t.contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_TRUE(t.contains(*IpAddress::parse("192.168.1.7")));
  EXPECT_FALSE(t.contains(*IpAddress::parse("192.168.1.8")));
  EXPECT_TRUE(t.contains(*IpAddress::parse("fd12::1")));
  EXPECT_FALSE(t.contains(*IpAddress::parse("fe80::1")));
  EXPECT_TRUE(t.contains(*IpAddress::parse("::ffff:10.1.1.1")));  // an IPv4 peer on a v6 socket
  TrustedProxies odd;
  EXPECT_TRUE(odd.add("10.1.2.3/8"));  // host bits are masked off
  EXPECT_TRUE(odd.contains(*IpAddress::parse("10.9.9.9")));
}

TEST(TrustedProxies, RefusesMalformedRanges) {
  TrustedProxies t;
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "nope", "1.2.3.4:80",
                          "[::1]", "10.0.0.0/8/8"})
    EXPECT_FALSE(t.add(bad)) << bad;
  EXPECT_TRUE(t.empty());
  for (std::size_t i = 0; i < TrustedProxies::kMaxCidrs; ++i) ASSERT_TRUE(t.add("10.0.0.1"));
  EXPECT_FALSE(t.add("10.0.0.2"));  // bounded
}

TEST(TrustedProxies, ClientIsTheLastUntrustedHop) {
  TrustedProxies t;
  ASSERT_TRUE(t.add("127.0.0.1"));
  ASSERT_TRUE(t.add("10.0.0.0/8"));
  // Without a trusted peer the header is ignored.
  EXPECT_EQ(t.client_ip("203.0.113.9", "1.1.1.1"), "203.0.113.9");
  // One proxy: the hop it appended.
  EXPECT_EQ(t.client_ip("127.0.0.1", "198.51.100.4"), "198.51.100.4");
  // A client that forges hops on the left cannot choose its IP: the right-most untrusted wins.
  EXPECT_EQ(t.client_ip("127.0.0.1", "6.6.6.6, 198.51.100.4"), "198.51.100.4");
  // Two trusted proxies in a chain are skipped.
  EXPECT_EQ(t.client_ip("127.0.0.1", "6.6.6.6,198.51.100.4, 10.1.1.1"), "198.51.100.4");
  // Every hop trusted: the left-most.
  EXPECT_EQ(t.client_ip("127.0.0.1", "10.2.2.2, 10.1.1.1"), "10.2.2.2");
  // No header: the proxy itself.
  EXPECT_EQ(t.client_ip("127.0.0.1", ""), "127.0.0.1");
  // A hop that does not parse: the trusted proxy that reported it.
  EXPECT_EQ(t.client_ip("127.0.0.1", "198.51.100.4, garbage, 10.1.1.1"), "10.1.1.1");
  // Empty list members are skipped; ports and brackets are understood.
  EXPECT_EQ(t.client_ip("127.0.0.1", "198.51.100.4:5555, ,"), "198.51.100.4");
  EXPECT_EQ(t.client_ip("127.0.0.1", "[2001:db8::7]:1"), "2001:db8::7");
}

TEST(TrustedProxies, LooksAtABoundedNumberOfHops) {
  TrustedProxies t;
  ASSERT_TRUE(t.add("10.0.0.0/8"));
  std::string xff = "198.51.100.4";
  for (std::size_t i = 0; i < TrustedProxies::kMaxHops + 5; ++i) xff += ", 10.0.0.1";
  // The chain is longer than what is read: the last hop read (trusted) is the answer.
  EXPECT_EQ(t.client_ip("10.0.0.2", xff), "10.0.0.1");
}
