#include "auth/jwt.h"

#include <jwt.h>

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

// An integer claim, strictly: present and a JSON integer (libjwt's jwt_get_grant_int reads a
// string claim "0" as 0), of at most 18 digits, not negative. nullopt otherwise.
std::optional<long> int_claim(jwt_t* j, const char* name) {
  char* js = jwt_get_grants_json(j, name);
  if (!js) return std::nullopt;
  std::string text(js);
  free(js);
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::strtol(text.c_str(), nullptr, 10);
}

}  // namespace

JwtCodec::JwtCodec(std::string key, std::int64_t ttl_seconds, std::string database_id)
    : key_(std::move(key)), ttl_(ttl_seconds), db_(std::move(database_id)) {
  if (key_.size() < 32) throw std::invalid_argument("JWT key must be at least 32 bytes");
  if (db_.empty()) throw std::invalid_argument("JWT database id must not be empty");
  if (ttl_ <= 0) throw std::invalid_argument("JWT lifetime must be positive");
}

std::string JwtCodec::issue(Id user, std::int64_t version, TimeMs now) const {
  JwtPtr j;
  if (jwt_new(&j.p) != 0) throw std::runtime_error("jwt_new failed");
  long iat = static_cast<long>(now / 1000);
  std::string sub = format_id(user);
  if (version < 0) throw std::invalid_argument("token version must not be negative");
  if (jwt_add_grant(j.p, "sub", sub.c_str()) || jwt_add_grant(j.p, "iss", kIssuer) ||
      jwt_add_grant(j.p, "db", db_.c_str()) || jwt_add_grant_int(j.p, "ver", static_cast<long>(version)) ||
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

std::optional<TokenClaims> JwtCodec::verify(std::string_view token, TimeMs now) const {
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
  const char* db = jwt_get_grant(j.p, "db");
  if (!db || std::string_view(db) != db_) return std::nullopt;  // another database's, or none
  auto exp_claim = int_claim(j.p, "exp"), iat_claim = int_claim(j.p, "iat");
  if (!exp_claim || !iat_claim) return std::nullopt;
  long exp = *exp_claim, iat = *iat_claim;
  long now_s = static_cast<long>(now / 1000);
  if (exp <= now_s) return std::nullopt;
  if (iat > now_s + 60) return std::nullopt;  // issued in the future (beyond clock skew)
  auto ver = int_claim(j.p, "ver");
  if (!ver) return std::nullopt;  // absent, or not an integer: invalid
  const char* sub = jwt_get_grant(j.p, "sub");
  if (!sub) return std::nullopt;
  auto user = parse_id(sub);
  if (!user) return std::nullopt;
  return TokenClaims{*user, static_cast<std::int64_t>(*ver)};
}

}  // namespace parley::auth
