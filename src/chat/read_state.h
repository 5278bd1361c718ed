#pragma once
#include <algorithm>
#include <optional>

#include "chat/types.h"

namespace parley::chat {

// The read-state math, in one place. A user's read watermark W in a room means: every
// message with seq <= W is read. Sending moves the sender's watermark to the sent message,
// so a user's own messages are always at or below W, and the unread count is exactly
// last_seq - W — derived, never a counter that can drift.

inline Seq unread_count(Seq last_seq, Seq watermark) { return std::max<Seq>(0, last_seq - watermark); }

// Watermarks never move backwards, nor beyond the room's last message.
inline Seq advance_watermark(Seq current, Seq target, Seq last_seq) {
  return std::max(current, std::min(target, last_seq));
}

// A (re)joining member: history before the join is not unread for them.
inline Seq join_watermark(std::optional<Seq> previous, Seq last_seq) {
  return std::max(previous.value_or(0), last_seq);
}

}  // namespace parley::chat
