#pragma once
#include <string>
#include <string_view>

namespace parley::chat {

// Limits of user input (CONTRACT.md "Conventions", docs/decisions.md). Each throws
// parley::Error (400) with a message naming the field.
inline constexpr std::size_t kMaxContentBytes = 16384;
inline constexpr std::size_t kMaxClientMsgIdBytes = 64;
inline constexpr std::size_t kMinUsername = 3, kMaxUsername = 32;
inline constexpr std::size_t kMinPassword = 8, kMaxPassword = 128;
inline constexpr std::size_t kMaxRoomNameBytes = 100;
inline constexpr std::size_t kMaxInitialMembers = 1000;
inline constexpr std::size_t kMaxBulkReadIds = 500;
inline constexpr int kMaxHistoryLimit = 200, kDefaultHistoryLimit = 50;
inline constexpr int kMaxUserSearchLimit = 50, kDefaultUserSearchLimit = 20;
inline constexpr std::size_t kMaxEmojiBytes = 32;
inline constexpr std::size_t kMaxReactionEmoji = 64;  // distinct emoji on one message

// Returns the normalized (lower-case) username.
std::string normalize_username(std::string_view raw);
void check_password(std::string_view password);
void check_content(std::string_view content);
void check_client_msg_id(std::string_view id);
void check_room_name(std::string_view name);
// A reaction's emoji: 1-32 bytes of valid UTF-8 forming exactly one extended grapheme cluster
// (UAX #29, through ICU) that starts with a base character (not a combining mark, a joiner or
// another format character), with no control character or white space. 400 invalid_emoji.
void check_emoji(std::string_view emoji);

}  // namespace parley::chat
