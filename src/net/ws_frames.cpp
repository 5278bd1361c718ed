#include "net/ws_frames.h"

#include <openssl/sha.h>

#include <algorithm>

#include "common/utf8.h"

namespace parley::net {

bool ws_close_code_valid(std::uint16_t code) {
  // 1004 reserved; 1005, 1006 and 1015 only ever stand for "none" / "abnormal" / "TLS" locally.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

// Header bytes needed so far (2, then 2 + extended length + 4 mask bytes); true when all are in.
bool WsFrameReader::header_complete(std::size_t& need) const {
  need = 2;
  if (hdr_len_ < 2) return false;
  std::uint8_t len7 = hdr_[1] & 0x7f;
  need += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  need += 4;  // masked (an unmasked frame fails once the first two bytes are in)
  return hdr_len_ >= need;
}

void WsFrameReader::fail(WsEvent& out, std::uint16_t code, std::string_view why) {
  failed_ = true;
  out.kind = WsEvent::Kind::Error;
  out.code = code;
  out.payload = why;
  std::string().swap(msg_);
  std::string().swap(ctl_);
}

void WsFrameReader::release() {
  if (mid_message()) return;
  std::string().swap(msg_);
  std::string().swap(ctl_);
}

// The current frame's payload is all in: hand out what it completes.
void WsFrameReader::finish_frame(WsEvent& out) {
  in_frame_ = false;
  hdr_len_ = 0;
  switch (op_) {
    case 8: {  // close
      std::uint16_t code = 0;
      std::string_view reason;
      if (ctl_.size() == 1) return fail(out, kWsProtocolError, "close frame with a 1-byte payload");
      if (ctl_.size() >= 2) {
        code = static_cast<std::uint16_t>((static_cast<unsigned char>(ctl_[0]) << 8) |
                                          static_cast<unsigned char>(ctl_[1]));
        if (!ws_close_code_valid(code)) return fail(out, kWsProtocolError, "invalid close code");
        reason = std::string_view(ctl_).substr(2);
        if (!is_valid_utf8(reason)) return fail(out, kWsBadPayload, "close reason is not UTF-8");
      }
      out.kind = WsEvent::Kind::Close;
      out.code = code;
      out.payload = reason;
      return;
    }
    case 9:
      out.kind = WsEvent::Kind::Ping;
      out.payload = ctl_;
      return;
    case 10:
      out.kind = WsEvent::Kind::Pong;
      out.payload = ctl_;
      return;
    default:  // a data frame (text, binary, continuation)
      if (!fin_) return;
      if (msg_op_ == 1 && !is_valid_utf8(msg_)) return fail(out, kWsBadPayload, "text is not UTF-8");
      out.kind = msg_op_ == 1 ? WsEvent::Kind::Text : WsEvent::Kind::Binary;
      out.payload = msg_;
      msg_op_ = 0;
      return;
  }
}

std::size_t WsFrameReader::next(std::string_view in, WsEvent& out) {
  out = WsEvent{};
  if (failed_) return 0;
  // The previous event's buffer is done with once the caller asks for the next one.
  if (!in_frame_ && hdr_len_ == 0) {
    if (msg_op_ == 0) msg_.clear();
    ctl_.clear();
  }
  std::size_t used = 0;
  while (used < in.size()) {
    if (!in_frame_) {
      std::size_t need = 0;
      while (!header_complete(need) && used < in.size()) {
        // Copy only what the header still lacks (need grows once the length form is known).
        hdr_[hdr_len_++] = static_cast<unsigned char>(in[used++]);
        if (hdr_len_ == 2) {
          unsigned char b0 = hdr_[0], b1 = hdr_[1];
          if (b0 & 0x70) {
            fail(out, kWsProtocolError, "RSV bits set");
            return used;
          }
          if (!(b1 & 0x80)) {
            fail(out, kWsProtocolError, "client frame not masked");
            return used;
          }
          std::uint8_t op = b0 & 0x0f;
          bool fin = (b0 & 0x80) != 0;
          std::uint8_t len7 = b1 & 0x7f;
          if (op >= 8) {
            if (op > 10) {
              fail(out, kWsProtocolError, "unknown opcode");
              return used;
            }
            if (!fin) {
              fail(out, kWsProtocolError, "fragmented control frame");
              return used;
            }
            if (len7 > 125) {
              fail(out, kWsProtocolError, "control frame over 125 bytes");
              return used;
            }
          } else if (op > 2) {
            fail(out, kWsProtocolError, "unknown opcode");
            return used;
          } else if (op == 0 && msg_op_ == 0) {
            fail(out, kWsProtocolError, "continuation without a message");
            return used;
          } else if (op != 0 && msg_op_ != 0) {
            fail(out, kWsProtocolError, "new message inside a fragmented one");
            return used;
          }
        }
      }
      if (!header_complete(need)) return used;  // more header bytes to come
      std::uint8_t len7 = hdr_[1] & 0x7f;
      std::uint64_t len = len7;
      std::size_t at = 2;
      if (len7 == 126) {
        len = (std::uint64_t{hdr_[2]} << 8) | hdr_[3];
        at = 4;
        if (len < 126) {
          fail(out, kWsProtocolError, "length not minimally encoded");
          return used;
        }
      } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | hdr_[2 + i];
        at = 10;
        if (len >> 63) {
          fail(out, kWsProtocolError, "length over 2^63");
          return used;
        }
        if (len <= 0xffff) {
          fail(out, kWsProtocolError, "length not minimally encoded");
          return used;
        }
      }
      std::copy_n(hdr_.begin() + static_cast<std::ptrdiff_t>(at), 4, mask_.begin());
      op_ = hdr_[0] & 0x0f;
      fin_ = (hdr_[0] & 0x80) != 0;
      if (op_ < 8) {
        if (len > max_ || msg_.size() + len > max_) {
          fail(out, kWsTooBig, "message too big");
          return used;
        }
        if (op_ != 0) msg_op_ = op_;
        // (Not reserved from the header alone beyond 4 KiB: the buffer grows as bytes come.)
        msg_.reserve(msg_.size() + static_cast<std::size_t>(std::min<std::uint64_t>(len, 4096)));
      }
      left_ = len;
      mask_pos_ = 0;
      in_frame_ = true;
    }
    // Payload: unmasked into the message or the control buffer.
    auto take = static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size() - used));
    std::string& dst = op_ >= 8 ? ctl_ : msg_;
    std::size_t old = dst.size();
    dst.resize(old + take);
    for (std::size_t i = 0; i < take; ++i) {
      dst[old + i] = static_cast<char>(static_cast<unsigned char>(in[used + i]) ^ mask_[mask_pos_]);
      mask_pos_ = (mask_pos_ + 1) & 3;
    }
    used += take;
    left_ -= take;
    if (left_ == 0) {
      finish_frame(out);
      if (out.kind != WsEvent::Kind::None) return used;
    }
  }
  return used;
}

void append_ws_frame(std::string& out, WsOpcode op, std::string_view payload) {
  unsigned char h[10];
  std::size_t n = payload.size(), len;
  h[0] = static_cast<unsigned char>(0x80 | static_cast<unsigned>(op));  // FIN
  if (n < 126) {
    h[1] = static_cast<unsigned char>(n);
    len = 2;
  } else if (n <= 0xffff) {
    h[1] = 126;
    h[2] = static_cast<unsigned char>(n >> 8);
    h[3] = static_cast<unsigned char>(n);
    len = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(n) >> (56 - 8 * i));
    len = 10;
  }
  out.append(reinterpret_cast<const char*>(h), len);
  out.append(payload);
}

std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xff));
  reason = reason.substr(0, 123);
  // Cut on a character boundary: the reason stays UTF-8.
  while (!reason.empty() && !is_valid_utf8(reason)) reason.remove_suffix(1);
  p.append(reason);
  return p;
}

std::string ws_accept_key(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string in;
  in.reserve(key.size() + guid.size());
  in.append(key);
  in.append(guid);
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  static constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < sizeof md; i += 3) {
    std::uint32_t v = std::uint32_t{md[i]} << 16;
    if (i + 1 < sizeof md) v |= std::uint32_t{md[i + 1]} << 8;
    if (i + 2 < sizeof md) v |= md[i + 2];
    out.push_back(b64[(v >> 18) & 63]);
    out.push_back(b64[(v >> 12) & 63]);
    out.push_back(i + 1 < sizeof md ? b64[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < sizeof md ? b64[v & 63] : '=');
  }
  return out;
}

std::string ws_accept_response(std::string_view key) {
  std::string r =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Server: parley\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  r += ws_accept_key(key);
  r += "\r\n\r\n";
  return r;
}

}  // namespace parley::net
