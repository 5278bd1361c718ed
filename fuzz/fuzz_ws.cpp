// libFuzzer target: the text frames a client sends on one WebSocket connection, through
// WsDispatcher (api/ws_dispatch.cpp) as net::WsSession uses it: each frame's reply is sent
// at once, its blocking part (storage) runs next, in order. The first byte picks the socket
// (the sidebar, alice's chatroom socket of room 1, or bob's) and whether the connection's
// inbound budget is spent; the rest is split into frames at each 0x00 byte (a byte no JSON
// text holds raw). As Beast does, frames that are not valid UTF-8 are never dispatched.
// Checks: no crash or sanitizer report; every frame sent back is valid UTF-8 JSON with a
// string "type", and an error frame carries data.code and data.message.
#include <cstddef>
#include <cstdint>

#include "world.h"

using namespace parley;

namespace {
void check_frame(const std::string& f) {
  if (f.empty()) return;
  auto v = fuzz::require_json(f, "frame is not valid UTF-8 JSON");
  auto* o = v.if_object();
  auto* type = o ? o->if_contains("type") : nullptr;
  if (!type || !type->is_string()) fuzz::fail("frame without a string type", f);
  if (type->as_string() == "error") {
    auto* d = o->if_contains("data");
    if (!d) fuzz::fail("error frame without data", f);
    fuzz::require_error_shape(*d, f, "error frame without code/message");
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fuzz::World w;
  std::uint8_t mode = data[0];
  api::WsIdentity who;
  switch (mode % 3) {
    case 0:
      who = {w.alice, 0, "sidebar-1"};
      break;
    case 1:
      who = {w.alice, w.room, "chatroom-1"};
      break;
    default:
      who = {w.bob, w.room, "chatroom-2"};
      break;
  }
  bool limited = (mode & 0x80) != 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (int frames = 0; frames < 32; ++frames) {
    std::size_t cut = in.find('\0');
    std::string_view frame = in.substr(0, cut);
    if (is_valid_utf8(frame)) {
      api::Inbound r = w.ws.dispatch(who, frame, limited);
      check_frame(r.reply);
      if (r.blocking) check_frame(r.blocking());
    }
    if (cut == std::string_view::npos) break;
    in.remove_prefix(cut + 1);
  }
  return 0;
}
