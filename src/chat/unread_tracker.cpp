#include "chat/unread_tracker.h"

#include <algorithm>

namespace parley::chat {

std::optional<Badge> UnreadTracker::set(Id room, Entry& e, Seq last_seq, Seq read_seq, bool from_other) {
  Seq before = e.member ? unread_count(e.last_seq, e.read_seq) : 0;
  bool joined = !e.member;
  e.last_seq = std::max(e.last_seq, last_seq);
  e.read_seq = std::max(e.read_seq, read_seq);
  e.member = true;
  e.touched = clock_ + 1;
  Seq after = unread_count(e.last_seq, e.read_seq);
  total_ += after - before;
  if (!loaded_) {
    changed_while_loading_.insert(room);
    return std::nullopt;
  }
  if (after != before || joined || (from_other && e.last_seq > e.badged_last)) return give(room, e);
  return std::nullopt;  // e.g. the user's own send with nothing unread
}

std::optional<Badge> UnreadTracker::apply(Id room, Seq last_seq, Seq read_seq, bool from_other) {
  Entry& e = rooms_[room];
  if (e.left_at >= last_seq) return std::nullopt;  // a state of a membership that has ended
  if (e.member && !newer(last_seq, read_seq, e)) {
    // Superseded (it came late), but someone else's message the client has no badge past yet.
    if (loaded_ && from_other && e.last_seq > e.badged_last) return give(room, e);
    return std::nullopt;
  }
  return set(room, e, last_seq, read_seq, from_other);
}

std::optional<Badge> UnreadTracker::join(Id room, Seq last_seq, Seq read_seq) {
  Entry& e = rooms_[room];
  if (e.left_at > last_seq) return std::nullopt;  // older than a leave already seen
  e.left_at = -1;
  if (e.member && !newer(last_seq, read_seq, e)) return std::nullopt;
  return set(room, e, last_seq, read_seq, false);
}

void UnreadTracker::leave(Id room, Seq last_seq) {
  Entry& e = rooms_[room];
  if (e.member && e.last_seq > last_seq) return;  // the room was re-joined since
  if (e.member) total_ -= unread_count(e.last_seq, e.read_seq);
  e.member = false;
  e.touched = clock_ + 1;
  e.left_at = std::max(e.left_at, last_seq);
}

std::vector<Id> UnreadTracker::load(const std::vector<RoomBadge>& snapshot) {
  for (const auto& s : snapshot) {
    Entry& e = rooms_[s.room];
    if (e.left_at >= s.last_seq) continue;  // left after the snapshot was read
    e.last_seq = std::max(e.last_seq, s.last_seq);
    e.read_seq = std::max(e.read_seq, s.read_seq);
    e.member = true;
  }
  total_ = 0;
  for (auto& [room, e] : rooms_)
    if (e.member) {
      total_ += unread_count(e.last_seq, e.read_seq);
      e.badged_last = e.last_seq;  // the snapshot gives every room's badge
    }
  loaded_ = true;
  std::vector<Id> changed(changed_while_loading_.begin(), changed_while_loading_.end());
  changed_while_loading_.clear();
  std::sort(changed.begin(), changed.end());
  return changed;
}

UnreadTracker::Reloaded UnreadTracker::reload(const std::vector<RoomBadge>& snapshot, std::uint64_t mark) {
  Reloaded out;
  std::unordered_set<Id> in_snapshot;
  for (const auto& s : snapshot) {
    in_snapshot.insert(s.room);
    Entry& e = rooms_[s.room];
    if (e.left_at >= s.last_seq) continue;  // left after the snapshot was read
    if (e.member && !newer(s.last_seq, s.read_seq, e)) continue;
    Seq before = e.member ? unread_count(e.last_seq, e.read_seq) : 0;
    bool joined = !e.member;
    e.last_seq = std::max(e.last_seq, s.last_seq);
    e.read_seq = std::max(e.read_seq, s.read_seq);
    e.member = true;
    e.left_at = -1;
    total_ += unread_count(e.last_seq, e.read_seq) - before;
    if (joined || unread_count(e.last_seq, e.read_seq) != before || e.last_seq > e.badged_last)
      out.changed.push_back(s.room);
  }
  for (auto& [room, e] : rooms_)
    if (e.member && !in_snapshot.count(room) && e.touched <= mark) {  // a leave the events missed
      total_ -= unread_count(e.last_seq, e.read_seq);
      e.member = false;
      e.left_at = std::max(e.left_at, e.last_seq);
      out.left.push_back(room);
    }
  std::sort(out.changed.begin(), out.changed.end());
  std::sort(out.left.begin(), out.left.end());
  for (Id room : out.changed) rooms_[room].badged_last = rooms_[room].last_seq;
  return out;
}

std::optional<Badge> UnreadTracker::badge(Id room) const {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !it->second.member) return std::nullopt;
  return badge_of(room, it->second);
}

std::vector<Badge> UnreadTracker::badges() const {
  std::vector<Badge> out;
  for (const auto& [room, e] : rooms_)
    if (e.member) out.push_back(badge_of(room, e));
  std::sort(out.begin(), out.end(), [](const Badge& a, const Badge& b) { return a.room < b.room; });
  return out;
}

std::vector<Id> UnreadTracker::rooms() const {
  std::vector<Id> out;
  for (const auto& [room, e] : rooms_)
    if (e.member) out.push_back(room);
  return out;
}

}  // namespace parley::chat
