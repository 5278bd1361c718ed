#include "chat/validation.h"

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

}  // namespace parley::chat
