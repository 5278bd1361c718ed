#include "auth/url_signer.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace parley::auth {

UrlSigner::UrlSigner(std::string_view jwt_key) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  static_assert(crypto_kdf_KEYBYTES == 32 && crypto_auth_KEYBYTES == 32);
  // The JWT key may be any length (>= 32 bytes): hashed to the KDF's master key first.
  unsigned char master[crypto_kdf_KEYBYTES];
  crypto_generichash(master, sizeof master, reinterpret_cast<const unsigned char*>(jwt_key.data()), jwt_key.size(),
                     nullptr, 0);
  crypto_kdf_derive_from_key(key_, sizeof key_, 1, "parleyup", master);
  sodium_memzero(master, sizeof master);
}

std::string UrlSigner::sign(Id upload, std::int64_t exp) const {
  std::string msg = "upload:" + std::to_string(upload) + ":" + std::to_string(exp);
  unsigned char mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), key_);
  char hex[2 * crypto_auth_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  return std::string(hex, 2 * crypto_auth_BYTES);
}

std::string UrlSigner::url(Id upload, TimeMs now) const {
  std::int64_t exp = now / 1000 + kValiditySeconds;
  return "/api/uploads/" + format_id(upload) + "?exp=" + std::to_string(exp) + "&sig=" + sign(upload, exp);
}

bool UrlSigner::valid(Id upload, std::int64_t exp, std::string_view sig_hex, TimeMs now) const {
  if (exp * 1000 < now || sig_hex.size() != 2 * crypto_auth_BYTES) return false;
  unsigned char mac[crypto_auth_BYTES];
  std::size_t len = 0;
  if (sodium_hex2bin(mac, sizeof mac, sig_hex.data(), sig_hex.size(), nullptr, &len, nullptr) != 0 ||
      len != sizeof mac)
    return false;
  std::string msg = "upload:" + std::to_string(upload) + ":" + std::to_string(exp);
  return crypto_auth_verify(mac, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), key_) == 0;
}

}  // namespace parley::auth
