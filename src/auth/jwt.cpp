#include "auth/jwt.h"

#include <jwt.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace parley::auth {
namespace {

constexpr const char* kIssuer = "parley";
constexpr std::size_t kMaxTokenBytes = 4096;

struct JwtPtr {
  jwt_t* p = nullptr;
  ~JwtPtr() { jwt_free(p); }
};

}  // namespace

JwtCodec::JwtCodec(std::string key, std::int64_t ttl_seconds) : key_(std::move(key)), ttl_(ttl_seconds) {
  if (key_.size() < 32) throw std::invalid_argument("JWT key must be at least 32 bytes");
  if (ttl_ <= 0) throw std::invalid_argument("JWT lifetime must be positive");
}

std::string JwtCodec::issue(Id user, TimeMs now) const {
  JwtPtr j;
  if (jwt_new(&j.p) != 0) throw std::runtime_error("jwt_new failed");
  long iat = static_cast<long>(now / 1000);
  std::string sub = format_id(user);
  if (jwt_add_grant(j.p, "sub", sub.c_str()) || jwt_add_grant(j.p, "iss", kIssuer) ||
      jwt_add_grant_int(j.p, "iat", iat) || jwt_add_grant_int(j.p, "exp", iat + static_cast<long>(ttl_)) ||
      jwt_set_alg(j.p, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
                  static_cast<int>(key_.size())))
    throw std::runtime_error("building a JWT failed");
  char* s = jwt_encode_str(j.p);
  if (!s) throw std::runtime_error("jwt_encode_str failed");
  std::string out(s);
  free(s);  // libjwt 1.10 returns malloc()ed strings
  return out;
}

std::optional<Id> JwtCodec::verify(std::string_view token, TimeMs now) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  std::string t(token);
  JwtPtr j;
  if (jwt_decode(&j.p, t.c_str(), reinterpret_cast<const unsigned char*>(key_.data()), static_cast<int>(key_.size())) !=
          0 ||
      !j.p)
    return std::nullopt;
  if (jwt_get_alg(j.p) != JWT_ALG_HS256) return std::nullopt;  // pinned: no none, no other alg
  const char* iss = jwt_get_grant(j.p, "iss");
  if (!iss || std::string_view(iss) != kIssuer) return std::nullopt;
  errno = 0;
  long exp = jwt_get_grant_int(j.p, "exp");
  if (errno != 0) return std::nullopt;
  errno = 0;
  long iat = jwt_get_grant_int(j.p, "iat");
  if (errno != 0) return std::nullopt;
  long now_s = static_cast<long>(now / 1000);
  if (exp <= now_s) return std::nullopt;
  if (iat > now_s + 60) return std::nullopt;  // issued in the future (beyond clock skew)
  const char* sub = jwt_get_grant(j.p, "sub");
  if (!sub) return std::nullopt;
  return parse_id(sub);
}

}  // namespace parley::auth
