// libFuzzer target: JwtCodec::verify (auth/jwt.cpp over libjwt) on arbitrary bytes as the
// bearer token, at a fixed clock so that a crash file reproduces. Checks: no crash or
// sanitizer report; a token that verifies names a positive user id, and verifies again the
// same way (verify is a pure function of the token and the time), with a version >= 0. The corpus holds tokens
// signed with this key at kNow (valid, expired, other algorithms, bad claims).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/jwt.h"
#include "fuzz_check.h"

using namespace parley;

namespace {
constexpr TimeMs kNow = 1'780'000'000'000;  // 2026-05-28; the corpus tokens have iat 1780000000
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auth::JwtCodec codec(fuzz::kKey, 3600, fuzz::kDatabaseId);
  std::string_view token(reinterpret_cast<const char*>(data), size);
  auto c = codec.verify(token, kNow);
  if (c && c->user <= 0) fuzz::fail("verified a token with a non-positive user id", token);
  if (c && c->version < 0) fuzz::fail("verified a token with a negative version", token);
  auto again = codec.verify(token, kNow);
  if (again.has_value() != c.has_value() || (c && (again->user != c->user || again->version != c->version)))
    fuzz::fail("verify is not deterministic", token);
  return 0;
}
