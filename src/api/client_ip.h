#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::api {

// An IPv4 or IPv6 address in binary form (IPv4 also as an IPv4-mapped IPv6 address, so one
// CIDR list covers both ways a proxy may connect).
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
  // "1.2.3.4", "::1", "[::1]", "[::1]:443", "1.2.3.4:80" (a port is ignored); nullopt else.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;  // canonical text; an IPv4-mapped address prints as IPv4
};

// The reverse proxies whose X-Forwarded-For the server believes (`--trusted-proxy CIDR`,
// repeatable). Bounded by the configuration: at most kMaxCidrs ranges.
class TrustedProxies {
 public:
  static constexpr std::size_t kMaxCidrs = 256;
  // X-Forwarded-For holds at most this many hops that are looked at (a longer chain is
  // read from its right end only; a proxy chain deeper than this is not a real deployment).
  static constexpr std::size_t kMaxHops = 32;

  // Adds "ADDR/PREFIX" or a single "ADDR"; false (nothing added) when it does not parse,
  // the prefix is out of range or kMaxCidrs are listed already.
  bool add(std::string_view cidr);
  bool empty() const { return ranges_.empty(); }
  bool contains(const IpAddress& a) const;

  // The client's IP for limits and logs: the peer itself unless the peer is a trusted proxy;
  // then the last (right-most) hop of X-Forwarded-For that is not a trusted proxy. When every
  // hop is trusted, the left-most; when a hop does not parse, the trusted hop that reported
  // it. `xff` is the comma-joined value of every X-Forwarded-For header, in order; `peer` the
  // socket's remote address as text.
  std::string client_ip(std::string_view peer, std::string_view xff) const;

 private:
  struct Range {
    IpAddress base;  // masked
    int prefix;      // in bits of the 16-byte form
  };
  std::vector<Range> ranges_;
};

}  // namespace parley::api
