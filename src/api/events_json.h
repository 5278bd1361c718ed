#pragma once
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/fanout.h"
#include "chat/events.h"
#include "chat/unread_tracker.h"

namespace parley::api {

// The WebSocket frames of CONTRACT.md, rendered from domain values. Events are rendered
// after the bus, once per event per instance, into one shared immutable buffer.
OutEventPtr new_message_event(const chat::Message& m, bool echo);  // echo: the sender's other connections
OutEventPtr message_read_event(const chat::MessageRead& e);
OutEventPtr message_delivered_event(const chat::MessageDelivered& e);
OutEventPtr badge_event(const chat::Badge& b);
// The badges of one event's fan-out, each distinct state rendered once: in a room where the
// members have read alike (a busy room nobody is reading: all of them) one frame serves every
// member, where badge_event per member rendered the same JSON a thousand times. Holds at most
// kMax states; beyond, a state is rendered on its own each time.
class BadgeFrames {
 public:
  static constexpr std::size_t kMax = 16;
  const OutEventPtr& get(const chat::Badge& b);
  std::size_t rendered() const { return rendered_; }  // badge_event calls so far

 private:
  std::vector<std::pair<chat::Badge, OutEventPtr>> states_;
  OutEventPtr uncached_;
  std::size_t rendered_ = 0;
};
// room_updated {room_id, name, type, members: [user…]} and room_left {room_id}: no seq.
OutEventPtr room_updated_event(const chat::RoomUpdated& e);
OutEventPtr room_left_event(Id room);
OutEventPtr typing_event(Id room, Id user, bool start);  // Ephemeral: dropped first under back-pressure
OutEventPtr reaction_event(const chat::ReactionChanged& e);  // Message class: state, never dropped
// presence {user_id, status, last_seen}: the event, and the same object for REST.
OutEventPtr presence_event(const chat::Presence& e);
boost::json::object presence_json(Id user, bool online, std::optional<TimeMs> last_seen);
// upload_progress {upload_id, received, total}: Ephemeral but the last (received == total).
OutEventPtr upload_progress_event(const chat::UploadProgress& e);

// Frames of one connection.
std::string new_message_frame(const chat::Message& m);
std::string connected_frame(Id user, std::string_view connection_id, std::optional<Id> room);
std::string resync_frame(Id room, chat::Seq last_seq);
// client_msg_id: of the refused send, when the frame had one.
std::string error_frame(std::string_view code, std::string_view message,
                        const std::optional<std::string>& client_msg_id = std::nullopt);
std::string ack_frame(const std::string& client_msg_id, const chat::Message& m);

}  // namespace parley::api
