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

// What a valid token says: whose it is and the token version it was issued at (the caller
// compares that with the user's current one: an older one was revoked).
struct TokenClaims {
  Id user = 0;
  std::int64_t version = 0;
};

// Issues and verifies HS256 tokens with claims sub (user id), ver (the user's token version
// at issue), db (the database's id, chat::Store::database_id), iat, exp and iss="parley".
// The algorithm is pinned: a token whose header names any other algorithm (or none) is
// refused even if libjwt could verify it. A token without db, or with another database's,
// is refused: a key kept across a replaced database never lets a token act as another user.
class JwtCodec {
 public:
  // key: at least 32 bytes; database_id: not empty.
  JwtCodec(std::string key, std::int64_t ttl_seconds, std::string database_id);
  std::string issue(Id user, std::int64_t version, TimeMs now) const;
  // The claims of a valid, unexpired token of this database; nullopt for anything else.
  std::optional<TokenClaims> verify(std::string_view token, TimeMs now) const;

 private:
  std::string key_;
  std::int64_t ttl_;
  std::string db_;
};

}  // namespace parley::auth

namespace parley::auth {
// A fresh random key as hex text (2 * bytes characters), for a generated key file.
std::string random_key_hex(std::size_t bytes);
}  // namespace parley::auth
