#pragma once
#include <string>
#include <string_view>

#include "api/fanout.h"
#include "chat/events.h"

namespace parley::api {

// Turns domain events into the WebSocket frames of CONTRACT.md and hands them to the
// fan-out in commit order. Rendering happens on the fan-out's ordered executor, not on the
// store's commit thread.
class EventPublisher final : public chat::EventSink {
 public:
  explicit EventPublisher(Fanout& fanout) : fanout_(fanout) {}
  bool is_online(Id user) override { return fanout_.online(user); }
  void message_created(const chat::MessageCreated& e) override;
  void read_moved(const chat::ReadMoved& e) override;
  void member_joined(const chat::MemberJoined& e) override;
  void member_left(const chat::MemberLeft& e) override;

 private:
  Fanout& fanout_;
};

// Frames, also used by the WebSocket session itself.
OutEventPtr unread_event(const chat::UnreadState& s);
std::string new_message_frame(const chat::Message& m);
std::string connected_frame(Id user, std::string_view connection_id, std::optional<Id> room);
std::string resync_frame(Id room, chat::Seq last_seq);
std::string error_frame(std::string_view code, std::string_view message);

}  // namespace parley::api
