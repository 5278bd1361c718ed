#include "chat/validation.h"

#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <memory>

#include "common/error.h"
#include "common/utf8.h"

namespace parley::chat {

std::string normalize_username(std::string_view raw) {
  if (raw.size() < kMinUsername || raw.size() > kMaxUsername)
    bad_input("username must be 3-32 characters of [a-z0-9_.-]");
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' || l == '.' || l == '-';
    if (!ok) bad_input("username must be 3-32 characters of [a-z0-9_.-]");
    out.push_back(l);
  }
  return out;
}

void check_password(std::string_view password) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) bad_input("password must be 8-128 bytes");
}

void check_content(std::string_view content) {
  if (content.empty()) bad_input("content must not be empty");
  if (content.size() > kMaxContentBytes) bad_input("content must be at most 16384 bytes");
  if (!is_valid_utf8(content)) bad_input("content must be valid UTF-8");
  if (is_blank_utf8(content)) bad_input("content must not be only white space");
}

void check_client_msg_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxClientMsgIdBytes) bad_input("client_msg_id must be 1-64 bytes");
  if (!is_valid_utf8(id)) bad_input("client_msg_id must be valid UTF-8");
  for (char c : id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad_input("client_msg_id must not hold control characters");
}

void check_room_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRoomNameBytes) bad_input("name must be 1-100 bytes");
  if (!is_valid_utf8(name)) bad_input("name must be valid UTF-8");
  if (is_blank_utf8(name)) bad_input("name must not be only white space");
}

namespace {

[[noreturn]] void bad_emoji(const std::string& msg) { throw Error(ErrorKind::BadInput, "invalid_emoji", msg); }

// The number of extended grapheme clusters of s (valid UTF-8), by ICU's character break
// iterator (UAX #29 with ICU's rules and data: emoji ZWJ sequences, flags, modifiers).
std::size_t grapheme_count(std::string_view s) {
  UErrorCode st = U_ZERO_ERROR;
  std::unique_ptr<UText, decltype(&utext_close)> text(
      utext_openUTF8(nullptr, s.data(), static_cast<int64_t>(s.size()), &st), &utext_close);
  std::unique_ptr<UBreakIterator, decltype(&ubrk_close)> it(ubrk_open(UBRK_CHARACTER, "", nullptr, 0, &st),
                                                            &ubrk_close);
  if (U_SUCCESS(st)) ubrk_setUText(it.get(), text.get(), &st);
  if (U_FAILURE(st)) throw std::runtime_error(std::string("ICU break iterator: ") + u_errorName(st));
  std::size_t n = 0;
  for (int32_t b = ubrk_first(it.get()); (b = ubrk_next(it.get())) != UBRK_DONE;) ++n;
  return n;
}

}  // namespace

void check_emoji(std::string_view emoji) {
  if (emoji.empty()) bad_emoji("emoji must not be empty");
  if (emoji.size() > kMaxEmojiBytes) bad_emoji("emoji must be at most 32 bytes");
  if (!is_valid_utf8(emoji)) bad_emoji("emoji must be valid UTF-8");
  const auto* p = reinterpret_cast<const uint8_t*>(emoji.data());
  int32_t len = static_cast<int32_t>(emoji.size());
  for (int32_t i = 0; i < len;) {
    bool first = i == 0;
    UChar32 c;
    U8_NEXT(p, i, len, c);
    switch (u_charType(c)) {
      case U_CONTROL_CHAR:
      case U_SPACE_SEPARATOR:
      case U_LINE_SEPARATOR:
      case U_PARAGRAPH_SEPARATOR:
        bad_emoji("emoji must not hold control characters or white space");
      case U_NON_SPACING_MARK:
      case U_ENCLOSING_MARK:
      case U_COMBINING_SPACING_MARK:
      case U_FORMAT_CHAR:
        if (first) bad_emoji("emoji must start with a base character, not a combining mark or joiner");
        break;
      default:
        break;
    }
  }
  if (grapheme_count(emoji) != 1) bad_emoji("emoji must be exactly one grapheme cluster");
}

}  // namespace parley::chat
