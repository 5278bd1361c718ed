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

// The delivered watermark D (grey double ticks): every message with seq <= D has reached a
// device of the user. It moves as the read watermark does (advance_watermark: forward only,
// clamped to last_seq), and a read implies delivered: D is raised with W, so D >= W always.
inline Seq raise_delivered(Seq delivered, Seq read) { return std::max(delivered, read); }

// A message's tick, from the watermarks of the room's members other than its sender alone:
// sent (stored), delivered to every recipient, or read by every recipient. A room without
// other members reads as Read (nobody is left to deliver to).
enum class Tick { Sent, Delivered, Read };
template <class Members>  // each with .user.id, .read_seq, .delivered_seq
Tick tick_of(Seq seq, Id sender, const Members& members) {
  bool delivered = true, read = true;
  for (const auto& m : members) {
    if (m.user.id == sender) continue;
    if (raise_delivered(m.delivered_seq, m.read_seq) < seq) delivered = false;
    if (m.read_seq < seq) read = false;
  }
  return read ? Tick::Read : delivered ? Tick::Delivered : Tick::Sent;
}

// A (re)joining member: history before the join is not unread for them.
inline Seq join_watermark(std::optional<Seq> previous, Seq last_seq) {
  return std::max(previous.value_or(0), last_seq);
}

}  // namespace parley::chat
