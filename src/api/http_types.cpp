#include "api/http_types.h"

#include <algorithm>

namespace parley::api {
namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool is_b64token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/';
}

// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_b64token(std::string_view t) {
  std::size_t body = t.find_last_not_of('=');
  if (body == std::string_view::npos) return false;  // empty, or only "="
  return std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(body) + 1, is_b64token_char);
}

}  // namespace

std::optional<std::string_view> bearer_token(std::string_view a) {
  while (!a.empty() && is_ows(a.front())) a.remove_prefix(1);
  while (!a.empty() && is_ows(a.back())) a.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (a.size() <= kScheme.size() || a[kScheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if ((a[i] | 0x20) != kScheme[i]) return std::nullopt;  // ASCII lower case; "bearer" has no digits
  a.remove_prefix(kScheme.size());
  while (!a.empty() && a.front() == ' ') a.remove_prefix(1);
  if (!is_b64token(a)) return std::nullopt;
  return a;
}

}  // namespace parley::api
