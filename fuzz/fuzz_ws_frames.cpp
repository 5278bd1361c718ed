// libFuzzer target: the bytes a client sends after the WebSocket upgrade, through
// net::WsFrameReader (net/ws_frames.cpp) as net::WsSession reads them: in whatever pieces the
// socket gives. The first byte picks the piece size (bits 0-5: 1 to 64 bytes) and whether
// release() is called after each piece, as the keepalive sweep does (bit 6); the rest is cut
// into pieces of that size, and next() is called on each piece until it is used up or the
// reader fails. Checks: no crash or sanitizer report; next() never consumes more than it is
// given, returns None only once it consumed all of it, and consumes nothing after an Error;
// text messages are valid UTF-8, messages at most kMaxMessage bytes, ping and pong payloads
// at most 125, close codes 0 (no payload) or sendable (ws_close_code_valid) with a UTF-8
// reason, error codes 1002, 1007 or 1009; and the events (kind, payload, code) and the bytes
// consumed are the same as when the whole input is given to next() at once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"
#include "fuzz_check.h"
#include "net/ws_frames.h"

using namespace parley;
using net::WsEvent;
using Kind = WsEvent::Kind;

namespace {
constexpr std::size_t kMaxMessage = 4096;

struct Event {
  Kind kind;
  std::string payload;
  std::uint16_t code;
  bool operator==(const Event&) const = default;
};

struct Fed {
  std::vector<Event> events;
  std::size_t consumed = 0;
};

std::string describe(const Event& e) {
  static constexpr const char* names[] = {"None", "Text", "Binary", "Ping", "Pong", "Close", "Error"};
  return std::string(names[static_cast<int>(e.kind)]) + " code " + std::to_string(e.code) + ", " +
         std::to_string(e.payload.size()) + " bytes";
}

void check_event(const WsEvent& ev) {
  switch (ev.kind) {
    case Kind::Text:
      if (!is_valid_utf8(ev.payload)) fuzz::fail("a text message that is not UTF-8", ev.payload);
      [[fallthrough]];
    case Kind::Binary:
      if (ev.payload.size() > kMaxMessage) fuzz::fail("a message over the limit", std::to_string(ev.payload.size()));
      break;
    case Kind::Ping:
    case Kind::Pong:
      if (ev.payload.size() > 125) fuzz::fail("a control payload over 125 bytes", std::to_string(ev.payload.size()));
      break;
    case Kind::Close:
      if (ev.code != 0 && !net::ws_close_code_valid(ev.code))
        fuzz::fail("a close with a code that may not be sent", std::to_string(ev.code));
      if (ev.code == 0 && !ev.payload.empty()) fuzz::fail("a close reason without a code", ev.payload);
      if (ev.payload.size() > 123) fuzz::fail("a close reason over 123 bytes", ev.payload);
      if (!is_valid_utf8(ev.payload)) fuzz::fail("a close reason that is not UTF-8", ev.payload);
      break;
    case Kind::Error:
      if (ev.code != net::kWsProtocolError && ev.code != net::kWsBadPayload && ev.code != net::kWsTooBig)
        fuzz::fail("an error with a code other than 1002/1007/1009", std::to_string(ev.code));
      break;
    case Kind::None:
      break;
  }
}

// Feeds in to a fresh reader in pieces of `piece` bytes, as a session does with each read.
Fed feed(std::string_view in, std::size_t piece, bool release) {
  net::WsFrameReader r(kMaxMessage);
  Fed fed;
  for (std::size_t at = 0; at < in.size(); at += piece) {
    std::string_view p = in.substr(at, piece);
    while (!p.empty()) {
      WsEvent ev;
      std::size_t n = r.next(p, ev);
      if (n > p.size()) fuzz::fail("next() consumed more than it was given", std::to_string(n));
      fed.consumed += n;
      p.remove_prefix(n);
      if (ev.kind == Kind::None) {
        if (!p.empty()) fuzz::fail("None with bytes not consumed", std::to_string(p.size()));
        break;
      }
      check_event(ev);
      fed.events.push_back({ev.kind, std::string(ev.payload), ev.code});
      if (ev.kind == Kind::Error) {
        if (!r.failed()) fuzz::fail("an Error, but failed() is false", ev.payload);
        WsEvent after;
        // Neither what follows nor anything else is read any more.
        if (r.next(p, after) != 0 || r.next(in, after) != 0) fuzz::fail("next() consumed bytes after an Error", "");
        if (after.kind != Kind::None && after.kind != Kind::Error) fuzz::fail("an event after an Error", "");
        return fed;
      }
      if (r.failed()) fuzz::fail("failed() without an Error", describe(fed.events.back()));
      if ((ev.kind == Kind::Text || ev.kind == Kind::Binary) && r.mid_message())
        fuzz::fail("still mid-message after a whole message", describe(fed.events.back()));
      if (n == 0) fuzz::fail("an event from no new bytes", describe(fed.events.back()));
    }
    if (release) r.release();
  }
  if (fed.consumed != in.size()) fuzz::fail("bytes left without an Error", std::to_string(in.size() - fed.consumed));
  return fed;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = (data[0] & 63u) + 1;
  const bool release = (data[0] & 64u) != 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  Fed pieces = feed(in, piece, release);
  Fed whole = feed(in, in.empty() ? 1 : in.size(), false);
  if (pieces.consumed != whole.consumed)
    fuzz::fail("fed in pieces, a different number of bytes is consumed",
               std::to_string(pieces.consumed) + " vs " + std::to_string(whole.consumed) + " at once");
  for (std::size_t i = 0; i < pieces.events.size() || i < whole.events.size(); ++i) {
    if (i < pieces.events.size() && i < whole.events.size() && pieces.events[i] == whole.events[i]) continue;
    std::string a = i < pieces.events.size() ? describe(pieces.events[i]) : "nothing";
    std::string b = i < whole.events.size() ? describe(whole.events[i]) : "nothing";
    std::string where = "event " + std::to_string(i) + ": " + a + " in pieces of " + std::to_string(piece);
    fuzz::fail("fed in pieces, the events differ", where + ", " + b + " at once");
  }
  return 0;
}
