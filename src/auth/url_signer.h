#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/time.h"

namespace parley::auth {

// Signed download links of uploads: /api/uploads/<id>?exp=<unix seconds>&sig=<hex>, where sig
// is HMAC-SHA-512-256 (libsodium crypto_auth) of "upload:<id>:<exp>" under a key derived from
// the JWT key (crypto_kdf, context "parleyup", subkey 1): every instance sharing the JWT key
// makes and accepts the same links, and the JWT key itself never signs anything but tokens.
class UrlSigner {
 public:
  static constexpr std::int64_t kValiditySeconds = 600;  // a link works for 10 minutes
  explicit UrlSigner(std::string_view jwt_key);
  // The link of upload, valid until now + 10 min.
  std::string url(Id upload, TimeMs now) const;
  std::string sign(Id upload, std::int64_t exp) const;
  // Whether sig is the signature of (upload, exp) and exp is not past (constant-time compare).
  bool valid(Id upload, std::int64_t exp, std::string_view sig_hex, TimeMs now) const;

 private:
  unsigned char key_[32];
};

}  // namespace parley::auth
