#pragma once
#include <string>
#include <string_view>

namespace parley {

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// True when s (valid UTF-8) holds only white space: ASCII white space and the Unicode
// space separators listed in docs/decisions.md.
bool is_blank_utf8(std::string_view s);
// s with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD:
// what the server may safely put into a JSON body that quotes client input.
std::string to_valid_utf8(std::string_view s);

}  // namespace parley
