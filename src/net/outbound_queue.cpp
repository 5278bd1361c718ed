#include "net/outbound_queue.h"

#include <algorithm>

namespace parley::net {

void OutboundQueue::drop_at(std::uint64_t pos) {
  auto& slot = q_[pos - head_];
  if (!slot) return;
  --events_;
  bytes_ -= slot->payload.size();
  slot.reset();
}

// Oldest first, until the queue is within its bounds again (or none is left): the newest
// ephemeral state (a typing stop after its start) is the one most worth keeping.
void OutboundQueue::drop_ephemeral() {
  std::size_t i = 0;
  for (; i < ephemeral_at_.size() && over_bounds(); ++i)
    if (ephemeral_at_[i] >= head_) drop_at(ephemeral_at_[i]);
  ephemeral_at_.erase(ephemeral_at_.begin(), ephemeral_at_.begin() + static_cast<std::ptrdiff_t>(i));
}

OutboundQueue::Push OutboundQueue::push(api::OutEventPtr ev) {
  Push result = Push::Queued;
  if (ev->cls == api::EventClass::Ephemeral && over_bounds()) return Push::Dropped;
  if (ev->cls == api::EventClass::Badge) {
    auto it = badge_at_.find(ev->room);
    if (it != badge_at_.end()) {
      drop_at(it->second);
      result = Push::Replaced;
    }
  }
  std::uint64_t pos = head_ + q_.size();
  if (ev->cls == api::EventClass::Badge) badge_at_[ev->room] = pos;
  if (ev->cls == api::EventClass::Ephemeral) ephemeral_at_.push_back(pos);
  bytes_ += ev->payload.size();
  ++events_;
  bool ephemeral = ev->cls == api::EventClass::Ephemeral;
  q_.push_back(std::move(ev));
  if (over_bounds()) drop_ephemeral();  // make room: ephemeral events go first
  if (ephemeral && !q_.back()) return Push::Dropped;  // it was the one that did not fit
  if (over_hard()) return Push::HardOverflow;
  if (over_bounds()) return Push::Overflow;
  return result;
}

std::size_t OutboundQueue::take(std::vector<api::OutEventPtr>& out, std::size_t max_events) {
  std::size_t n = 0;
  while (!q_.empty() && n < max_events) {
    auto ev = std::move(q_.front());
    q_.pop_front();
    std::uint64_t pos = head_++;
    if (!ev) continue;
    if (ev->cls == api::EventClass::Badge) {
      auto it = badge_at_.find(ev->room);
      if (it != badge_at_.end() && it->second == pos) badge_at_.erase(it);
    }
    --events_;
    bytes_ -= ev->payload.size();
    out.push_back(std::move(ev));
    ++n;
  }
  if (q_.empty())
    ephemeral_at_.clear();
  else if (ephemeral_at_.size() > 64)
    ephemeral_at_.erase(std::remove_if(ephemeral_at_.begin(), ephemeral_at_.end(), [&](auto p) { return p < head_; }),
                        ephemeral_at_.end());
  return n;
}

void OutboundQueue::clear() {
  q_.clear();
  head_ = 0;
  badge_at_.clear();
  ephemeral_at_.clear();
  events_ = bytes_ = 0;
}

}  // namespace parley::net
