#include "api/client_ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace parley::api {
namespace {

constexpr std::array<std::uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  return ec == std::errc() && ptr == p.data() + p.size() && v <= 65535;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > 64) return std::nullopt;
  if (text.front() == '[') {  // [v6] or [v6]:port
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1)))) return std::nullopt;
    text = text.substr(1, close - 1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // v4:port
    auto colon = text.find(':');
    if (!valid_port(text.substr(colon + 1))) return std::nullopt;
    text = text.substr(0, colon);
  }
  std::string s(text);
  IpAddress a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes.begin());
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    a.v4 = true;
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  std::memcpy(a.bytes.data(), &v6, 16);
  a.v4 = std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes.begin());
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

bool TrustedProxies::add(std::string_view cidr) {
  if (ranges_.size() >= kMaxCidrs) return false;
  cidr = trim(cidr);
  auto slash = cidr.find('/');
  auto addr = IpAddress::parse(cidr.substr(0, slash));
  auto text = cidr.substr(0, slash);
  // No brackets and no port in a range: "1.2.3.4:80" is not a CIDR.
  if (!addr || text.find('[') != std::string_view::npos || std::count(text.begin(), text.end(), ':') == 1) return false;
  int bits = addr->v4 ? 32 : 128;
  int prefix = bits;
  if (slash != std::string_view::npos) {
    auto p = cidr.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix < 0 || prefix > bits) return false;
  }
  if (addr->v4) prefix += 96;
  Range r{*addr, prefix};
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(prefix - 8 * i, 0, 8);
    r.base.bytes[static_cast<std::size_t>(i)] &= static_cast<std::uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  ranges_.push_back(r);
  return true;
}

bool TrustedProxies::contains(const IpAddress& a) const {
  for (const auto& r : ranges_) {
    bool in = true;
    for (int i = 0; i < 16 && in; ++i) {
      int keep = std::clamp(r.prefix - 8 * i, 0, 8);
      auto mask = static_cast<std::uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
      in = (a.bytes[static_cast<std::size_t>(i)] & mask) == r.base.bytes[static_cast<std::size_t>(i)];
    }
    if (in) return true;
  }
  return false;
}

std::string TrustedProxies::client_ip(std::string_view peer, std::string_view xff) const {
  auto p = IpAddress::parse(peer);
  if (!p) return std::string(peer);
  if (ranges_.empty() || !contains(*p)) return p->to_string();
  IpAddress current = *p;  // the right-most hop seen so far, trusted
  std::size_t hops = 0;
  while (!xff.empty() && hops++ < kMaxHops) {
    auto comma = xff.rfind(',');
    std::string_view hop = comma == std::string_view::npos ? xff : xff.substr(comma + 1);
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    if (trim(hop).empty()) continue;
    auto a = IpAddress::parse(hop);
    if (!a) break;  // the proxy's report does not parse: believe the proxy itself
    current = *a;
    if (!contains(current)) break;
  }
  return current.to_string();
}

}  // namespace parley::api
