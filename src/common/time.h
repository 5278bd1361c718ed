// common/: small shared pieces used by every layer (ids, time, errors, UTF-8).
// Depends on nothing but the standard library.
#pragma once
#include <cstdint>
#include <string>

namespace parley {

// Milliseconds since the Unix epoch, UTC. The one time type stored and passed around.
using TimeMs = std::int64_t;

TimeMs now_ms();
// RFC 3339 UTC with milliseconds: 2026-11-24T10:00:00.123Z
std::string format_rfc3339(TimeMs t);

}  // namespace parley
