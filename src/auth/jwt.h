// auth/: JWT (HS256 only, through libjwt) and Argon2id password hashing (libsodium).
// Depends on common/ only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/time.h"

namespace parley::auth {

// Issues and verifies HS256 tokens with claims sub (user id), iat, exp and iss="parley".
// The algorithm is pinned: a token whose header names any other algorithm (or none) is
// refused even if libjwt could verify it.
class JwtCodec {
 public:
  JwtCodec(std::string key, std::int64_t ttl_seconds);  // key: at least 32 bytes
  std::string issue(Id user, TimeMs now) const;
  // The user id of a valid, unexpired token; nullopt for anything else.
  std::optional<Id> verify(std::string_view token, TimeMs now) const;

 private:
  std::string key_;
  std::int64_t ttl_;
};

}  // namespace parley::auth

namespace parley::auth {
// A fresh random key as hex text (2 * bytes characters), for a generated key file.
std::string random_key_hex(std::size_t bytes);
}  // namespace parley::auth
