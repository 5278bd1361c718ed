#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// Every id is a positive integer, shown to clients as a decimal string (opaque to them).
using Id = std::int64_t;

// "42" -> 42. nullopt unless 1-18 ASCII digits without a leading zero.
std::optional<Id> parse_id(std::string_view s);
std::string format_id(Id id);

}  // namespace parley
