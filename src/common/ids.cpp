#include "common/ids.h"

namespace parley {

std::optional<Id> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return std::nullopt;
  Id v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string format_id(Id id) { return std::to_string(id); }

}  // namespace parley
