#pragma once
// WebSocket framing (RFC 6455) as a server speaks it, without Asio or Beast: the parser of
// what a client sends and the builders of what the server sends. net::WsSession does its own
// framing after the upgrade (no Beast websocket::stream per connection: 2.7 KiB less per idle
// socket, docs/decisions.md "Own WebSocket framing after the upgrade"); the fuzz target
// fuzz/fuzz_ws_frames.cpp drives the parser with arbitrary bytes.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::net {

enum class WsOpcode : std::uint8_t { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };

// Close codes the server sends (RFC 6455 §7.4.1).
inline constexpr std::uint16_t kWsProtocolError = 1002;
inline constexpr std::uint16_t kWsBadPayload = 1007;  // text that is not UTF-8
inline constexpr std::uint16_t kWsTooBig = 1009;

// What the parser found: one whole message or control frame, or a violation.
struct WsEvent {
  enum class Kind : std::uint8_t {
    None,    // nothing complete yet: every byte given was consumed, more are needed
    Text,    // a whole text message (fragments joined), valid UTF-8
    Binary,  // a whole binary message
    Ping,    // payload: what the pong must carry back
    Pong,
    Close,  // the peer's close: code (0 when the frame had no payload) and reason
    Error,  // a violation: code is the close code to send (1002, 1007, 1009), reason says what
  };
  Kind kind = Kind::None;
  std::string_view payload;  // Text/Binary/Ping/Pong; the close reason; valid until the next call
  std::uint16_t code = 0;    // Close, Error
};

// The incremental parser of a client's frames: bytes in, in whatever pieces the socket gives
// them, events out, one at a time. Checks what the RFC asks of a server: every frame masked,
// no RSV bits (no extension is negotiated), known opcodes, control frames final and at most
// 125 bytes, continuations only inside a fragmented message, minimal length encodings, a
// message (all its fragments) at most max_message bytes, text and close reasons valid UTF-8,
// close codes that may be sent. After an Error it consumes nothing more.
// Bounded: it holds at most one message (max_message bytes) and one control payload (125).
class WsFrameReader {
 public:
  explicit WsFrameReader(std::size_t max_message) : max_(max_message) {}

  // Consumes bytes from the front of in until an event is complete (then out holds it and the
  // bytes after it are left for the next call) or in is used up (out.kind == None). Returns
  // how many bytes were consumed.
  std::size_t next(std::string_view in, WsEvent& out);
  bool failed() const { return failed_; }
  // Releases the buffers' memory once nothing is partly read (an idle connection's); the last
  // event's payload is gone with it.
  void release();
  // True while a frame or a fragmented message is partly read.
  bool mid_message() const { return hdr_len_ > 0 || in_frame_ || msg_op_ != 0; }

 private:
  bool header_complete(std::size_t& need) const;
  void fail(WsEvent& out, std::uint16_t code, std::string_view why);
  void finish_frame(WsEvent& out);

  std::size_t max_;
  std::string msg_;  // the data message being read (unmasked), across its fragments
  std::string ctl_;  // the control frame being read (≤ 125 bytes)
  std::array<unsigned char, 14> hdr_{};
  std::uint8_t hdr_len_ = 0;
  bool in_frame_ = false, fin_ = false, failed_ = false;
  std::uint8_t op_ = 0;      // the current frame's opcode
  std::uint8_t msg_op_ = 0;  // 1 text / 2 binary while a message is being read, else 0
  std::uint8_t mask_pos_ = 0;
  std::array<unsigned char, 4> mask_{};
  std::uint64_t left_ = 0;  // payload bytes of the current frame still to read
};

// Appends one final, unmasked frame (a server's) with this opcode and payload to out.
void append_ws_frame(std::string& out, WsOpcode op, std::string_view payload);
// A close frame's payload: the code (network order), then the reason (cut to fit 125 bytes).
std::string ws_close_payload(std::uint16_t code, std::string_view reason);
// May this close code appear in a close frame (RFC 6455 §7.4)?
bool ws_close_code_valid(std::uint16_t code);
// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2).
std::string ws_accept_key(std::string_view key);
// The whole 101 response to an upgrade with this key (no extension, no subprotocol).
std::string ws_accept_response(std::string_view key);

}  // namespace parley::net
