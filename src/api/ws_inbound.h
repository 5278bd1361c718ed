#pragma once
#include <string>
#include <string_view>

namespace parley::api {

// Answers one client→server text frame (CONTRACT.md "Client → server"): ping → pong,
// heartbeat → heartbeat_ack; malformed JSON, a missing or unknown type and bad fields →
// an `error` event. Returns the frame to send back.
std::string answer_client_frame(std::string_view text);

}  // namespace parley::api
