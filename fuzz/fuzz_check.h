// What every fuzz target shares: the JWT key of the fuzz world and corpus, and how a broken
// invariant ends the run (abort, so that libFuzzer writes the input as a crash file).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace parley::fuzz {

// The HS256 key the targets verify with; fuzz/corpus/jwt/ holds tokens signed with it.
inline const std::string kKey = "fuzz-key-fuzz-key-fuzz-key-fuzz-key";  // 35 bytes
// The database id the fuzz codecs are bound to (tokens carry it as the db claim).
inline constexpr const char* kDatabaseId = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

[[noreturn]] inline void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "FUZZ INVARIANT BROKEN: %s\n%.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace parley::fuzz
