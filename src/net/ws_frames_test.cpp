#include "net/ws_frames.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using namespace parley;
using net::WsEvent;
using net::WsFrameReader;
using net::WsOpcode;
using Kind = WsEvent::Kind;

namespace {

constexpr std::size_t kMax = std::size_t{1} << 20;
using Mask = std::array<unsigned char, 4>;
constexpr Mask kMask{0x37, 0xfa, 0x21, 0x3d};  // the masking key of RFC 6455 §5.7's examples
constexpr Mask kMask2{0xa5, 0x01, 0xfe, 0x5c};

// How the payload length is written: the shortest form (as the RFC demands), or forced into
// the 16-bit (126) or 64-bit (127) form whatever the length.
enum class Len { Minimal, Bits16, Bits64 };

// A frame header as a client sends it: FIN, the three RSV bits (rsv 0..7, RSV1 = 4), the
// opcode, the declared payload length in the chosen form, the mask bit and key.
std::string header(bool fin, std::uint8_t rsv, std::uint8_t op, std::uint64_t len, Len form = Len::Minimal,
                   Mask mask = kMask, bool masked = true) {
  std::string h;
  h.push_back(static_cast<char>((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (op & 0x0f)));
  unsigned char m = masked ? 0x80 : 0;
  if (form == Len::Minimal) form = len < 126 ? Len::Minimal : len <= 0xffff ? Len::Bits16 : Len::Bits64;
  if (form == Len::Minimal) {
    h.push_back(static_cast<char>(m | len));
  } else if (form == Len::Bits16) {
    h.push_back(static_cast<char>(m | 126));
    h.push_back(static_cast<char>((len >> 8) & 0xff));
    h.push_back(static_cast<char>(len & 0xff));
  } else {
    h.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  if (masked) h.append(reinterpret_cast<const char*>(mask.data()), mask.size());
  return h;
}

// A whole client frame: the header, then the payload masked with the key (or as is, unmasked).
std::string client_frame(bool fin, std::uint8_t rsv, std::uint8_t op, std::string_view payload, Mask mask = kMask,
                         Len form = Len::Minimal, bool masked = true) {
  std::string f = header(fin, rsv, op, payload.size(), form, mask, masked);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ (masked ? mask[i % 4] : 0)));
  return f;
}

std::string text(std::string_view p, bool fin = true) { return client_frame(fin, 0, 1, p); }
std::string binary(std::string_view p, bool fin = true) { return client_frame(fin, 0, 2, p); }
std::string cont(std::string_view p, bool fin = true) { return client_frame(fin, 0, 0, p, kMask2); }
std::string ping(std::string_view p) { return client_frame(true, 0, 9, p, kMask2); }
std::string pong(std::string_view p) { return client_frame(true, 0, 10, p); }
std::string close_frame(std::string_view p) { return client_frame(true, 0, 8, p); }
std::string code_bytes(std::uint16_t code) { return {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)}; }

// An event copied out of the reader (its payload is only valid until the next call). Errors
// compare by code only: their reason is free text.
struct Ev {
  Kind kind = Kind::None;
  std::string payload;
  std::uint16_t code = 0;
  bool operator==(const Ev& o) const {
    return kind == o.kind && code == o.code && (kind == Kind::Error || payload == o.payload);
  }
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  static constexpr const char* names[] = {"None", "Text", "Binary", "Ping", "Pong", "Close", "Error"};
  os << names[static_cast<int>(e.kind)] << "(code " << e.code << ", " << e.payload.size() << " bytes \"";
  for (std::size_t i = 0; i < e.payload.size() && i < 40; ++i) {
    auto c = static_cast<unsigned char>(e.payload[i]);
    if (c >= 0x20 && c < 0x7f) {
      os << e.payload[i];
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      os << "\\x" << hex[c >> 4] << hex[c & 15];
    }
  }
  return os << (e.payload.size() > 40 ? "\"...)" : "\")");
}

Ev text_ev(std::string p) { return {Kind::Text, std::move(p), 0}; }
Ev binary_ev(std::string p) { return {Kind::Binary, std::move(p), 0}; }
Ev ping_ev(std::string p) { return {Kind::Ping, std::move(p), 0}; }
Ev pong_ev(std::string p) { return {Kind::Pong, std::move(p), 0}; }
Ev close_ev(std::uint16_t code, std::string reason = "") { return {Kind::Close, std::move(reason), code}; }
Ev error_ev(std::uint16_t code) { return {Kind::Error, "", code}; }
using Evs = std::vector<Ev>;

struct Fed {
  Evs events;
  std::size_t consumed = 0;
};

// Feeds in to a fresh reader in pieces of `chunk` bytes (the last may be shorter), calling
// next() until each piece is used up, as a session does with what each read returns. Stops at
// the first Error. Checks what next() promises on every call.
Fed feed(std::string_view in, std::size_t chunk, std::size_t max = kMax, bool release_between = false) {
  WsFrameReader r(max);
  Fed run;
  if (chunk == 0) chunk = 1;
  for (std::size_t at = 0; at < in.size(); at += chunk) {
    std::string_view piece = in.substr(at, chunk);
    while (!piece.empty()) {
      WsEvent ev;
      std::size_t n = r.next(piece, ev);
      EXPECT_LE(n, piece.size()) << "consumed more than it was given";
      if (n > piece.size()) return run;
      run.consumed += n;
      piece.remove_prefix(n);
      if (ev.kind == Kind::None) {
        EXPECT_TRUE(piece.empty()) << "None, but " << piece.size() << " bytes were not consumed";
        break;
      }
      run.events.push_back({ev.kind, std::string(ev.payload), ev.code});
      if (ev.kind == Kind::Error) {
        EXPECT_TRUE(r.failed());
        return run;
      }
      EXPECT_FALSE(r.failed());
      if (n == 0) {
        ADD_FAILURE() << "an event from no new bytes";
        return run;
      }
    }
    if (release_between) r.release();
  }
  return run;
}

// The events of in fed whole; fed one byte at a time, and in pieces of 3, the events (and the
// bytes consumed) must be the same.
Evs parse(std::string_view in, std::size_t max = kMax) {
  Fed whole = feed(in, in.size(), max);
  Fed bytes = feed(in, 1, max);
  EXPECT_EQ(bytes.events, whole.events) << "fed one byte at a time";
  EXPECT_EQ(bytes.consumed, whole.consumed) << "fed one byte at a time";
  Fed threes = feed(in, 3, max);
  EXPECT_EQ(threes.events, whole.events) << "fed 3 bytes at a time";
  EXPECT_EQ(threes.consumed, whole.consumed) << "fed 3 bytes at a time";
  if (whole.events.empty() || whole.events.back().kind != Kind::Error) {
    EXPECT_EQ(whole.consumed, in.size()) << "without an error every byte is consumed";
  }
  return whole.events;
}

}  // namespace

// ---- the helper itself, against the RFC's own bytes ----

TEST(WsFrameReader, ReadsTheRfcMaskedHelloExample) {
  // RFC 6455 §5.7: "A single-frame masked text message" containing "Hello".
  const std::string rfc = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  EXPECT_EQ(text("Hello"), rfc);
  WsFrameReader r(kMax);
  WsEvent ev;
  EXPECT_EQ(r.next(rfc, ev), rfc.size());
  EXPECT_EQ(ev.kind, Kind::Text);
  EXPECT_EQ(ev.payload, "Hello");
  EXPECT_FALSE(r.failed());
  EXPECT_FALSE(r.mid_message());
}

// ---- messages and control frames ----

TEST(WsFrameReader, SingleTextFrame) {
  EXPECT_EQ(parse(text("hello, world")), (Evs{text_ev("hello, world")}));
  EXPECT_EQ(parse(text("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80")),
            (Evs{text_ev("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80")}));
}

TEST(WsFrameReader, BinaryFrameKeepsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));  // not UTF-8, and need not be
  EXPECT_EQ(parse(binary(all)), (Evs{binary_ev(all)}));
  EXPECT_EQ(parse(binary("\xff\xfe")), (Evs{binary_ev("\xff\xfe")}));
}

TEST(WsFrameReader, PingAndPongCarryTheirPayload) {
  EXPECT_EQ(parse(ping("are you there?")), (Evs{ping_ev("are you there?")}));
  EXPECT_EQ(parse(ping("")), (Evs{ping_ev("")}));
  EXPECT_EQ(parse(pong("\x01\x02\xff")), (Evs{pong_ev("\x01\x02\xff")}));
  EXPECT_EQ(parse(pong("")), (Evs{pong_ev("")}));
  std::string p125(125, 'p');
  EXPECT_EQ(parse(ping(p125)), (Evs{ping_ev(p125)}));  // the largest control payload
}

TEST(WsFrameReader, CloseWithCodeAndReason) {
  EXPECT_EQ(parse(close_frame(code_bytes(1000) + "bye")), (Evs{close_ev(1000, "bye")}));
  EXPECT_EQ(parse(close_frame(code_bytes(1001))), (Evs{close_ev(1001, "")}));
  EXPECT_EQ(parse(close_frame(code_bytes(4999) + "caf\xC3\xA9")), (Evs{close_ev(4999, "caf\xC3\xA9")}));
  std::string r123(123, 'r');
  EXPECT_EQ(parse(close_frame(code_bytes(1011) + r123)), (Evs{close_ev(1011, r123)}));
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    SCOPED_TRACE(code);
    EXPECT_EQ(parse(close_frame(code_bytes(code))), (Evs{close_ev(code)}));
  }
}

TEST(WsFrameReader, CloseWithoutPayloadHasCodeZero) { EXPECT_EQ(parse(close_frame("")), (Evs{close_ev(0, "")})); }

TEST(WsFrameReader, CloseWithOneBytePayloadIsAProtocolError) {
  EXPECT_EQ(parse(close_frame("\x03")), (Evs{error_ev(1002)}));
}

TEST(WsFrameReader, CloseWithACodeThatMayNotBeSentIsAProtocolError) {
  // 1004 reserved; 1005, 1006, 1015 never on the wire (§7.4.1); below 1000 unused; 1016-2999
  // for the RFC and its extensions; 5000 and up undefined.
  for (std::uint16_t code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    EXPECT_EQ(parse(close_frame(code_bytes(code))), (Evs{error_ev(1002)}));
    EXPECT_EQ(parse(close_frame(code_bytes(code) + "reason")), (Evs{error_ev(1002)}));
  }
}

TEST(WsFrameReader, CloseReasonThatIsNotUtf8IsBadPayload) {
  EXPECT_EQ(parse(close_frame(code_bytes(1000) + "\xff")), (Evs{error_ev(1007)}));
  EXPECT_EQ(parse(close_frame(code_bytes(1000) + "ok\xC0\xAF")), (Evs{error_ev(1007)}));
  EXPECT_EQ(parse(close_frame(code_bytes(1000) + "\xED\xA0\x80")), (Evs{error_ev(1007)}));  // a surrogate
}

// ---- fragmentation ----

TEST(WsFrameReader, FragmentedTextIsJoined) {
  EXPECT_EQ(parse(text("Hel", false) + cont("lo")), (Evs{text_ev("Hello")}));
  EXPECT_EQ(parse(text("one ", false) + cont("two ", false) + cont("three ", false) + cont("four")),
            (Evs{text_ev("one two three four")}));
  // Empty fragments anywhere.
  EXPECT_EQ(parse(text("", false) + cont("", false) + cont("x", false) + cont("")), (Evs{text_ev("x")}));
  EXPECT_EQ(parse(binary(std::string("\x00\x01", 2), false) + cont("\xff")),
            (Evs{binary_ev(std::string("\x00\x01\xff", 3))}));
}

TEST(WsFrameReader, ControlFramesMayComeBetweenFragments) {
  EXPECT_EQ(parse(text("Hel", false) + ping("p1") + cont("lo")), (Evs{ping_ev("p1"), text_ev("Hello")}));
  EXPECT_EQ(parse(text("a", false) + ping("") + cont("b", false) + pong("q") + ping("r") + cont("c")),
            (Evs{ping_ev(""), pong_ev("q"), ping_ev("r"), text_ev("abc")}));
  EXPECT_EQ(parse(binary("x", false) + close_frame(code_bytes(1000))), (Evs{close_ev(1000)}));
  // A long control payload in the middle does not disturb the message around it.
  std::string p125(125, 'z');
  EXPECT_EQ(parse(text(std::string(200, 'a'), false) + ping(p125) + cont(std::string(300, 'b'))),
            (Evs{ping_ev(p125), text_ev(std::string(200, 'a') + std::string(300, 'b'))}));
}

TEST(WsFrameReader, LoneContinuationIsAProtocolError) {
  EXPECT_EQ(parse(cont("x")), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(cont("x", false)), (Evs{error_ev(1002)}));
  // After a message is complete, a continuation has nothing to continue.
  EXPECT_EQ(parse(text("done") + cont("more")), (Evs{text_ev("done"), error_ev(1002)}));
  EXPECT_EQ(parse(text("a", false) + cont("b") + cont("c")), (Evs{text_ev("ab"), error_ev(1002)}));
}

TEST(WsFrameReader, NewMessageInsideAFragmentedOneIsAProtocolError) {
  EXPECT_EQ(parse(text("a", false) + text("b")), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(text("a", false) + binary("b")), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(binary("a", false) + text("b", false)), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(text("a", false) + ping("") + text("b")), (Evs{ping_ev(""), error_ev(1002)}));
}

// ---- several frames, consumed counts ----

TEST(WsFrameReader, SeveralFramesInOneBufferComeOutOneEventPerCall) {
  const std::string f1 = text("a"), f2 = binary("bc"), f3 = ping(""), f4 = close_frame(code_bytes(1000));
  ASSERT_EQ(f1.size(), 7u);
  ASSERT_EQ(f2.size(), 8u);
  ASSERT_EQ(f3.size(), 6u);
  ASSERT_EQ(f4.size(), 8u);
  const std::string all = f1 + f2 + f3 + f4;
  std::string_view in(all);
  WsFrameReader r(kMax);
  WsEvent ev;
  struct Want {
    std::size_t used;
    Kind kind;
    std::string_view payload;
  };
  for (const Want& w : {Want{7, Kind::Text, "a"}, Want{8, Kind::Binary, "bc"}, Want{6, Kind::Ping, ""},
                        Want{8, Kind::Close, ""}}) {
    EXPECT_EQ(r.next(in, ev), w.used);
    EXPECT_EQ(ev.kind, w.kind);
    EXPECT_EQ(ev.payload, w.payload);
    in.remove_prefix(w.used);
  }
  EXPECT_EQ(ev.code, 1000);
  EXPECT_EQ(r.next(in, ev), 0u);
  EXPECT_EQ(ev.kind, Kind::None);
  EXPECT_FALSE(r.failed());
}

TEST(WsFrameReader, APartialFrameAfterAnEventIsConsumedAndCompletedLater) {
  const std::string f1 = text("first"), f2 = binary("second");
  const std::string all = f1 + f2.substr(0, 5);
  WsFrameReader r(kMax);
  WsEvent ev;
  EXPECT_EQ(r.next(all, ev), f1.size());
  EXPECT_EQ(ev.kind, Kind::Text);
  EXPECT_EQ(ev.payload, "first");
  EXPECT_EQ(r.next(std::string_view(all).substr(f1.size()), ev), 5u);  // header bytes only: all taken
  EXPECT_EQ(ev.kind, Kind::None);
  EXPECT_TRUE(r.mid_message());
  EXPECT_EQ(r.next(std::string_view(f2).substr(5), ev), f2.size() - 5);
  EXPECT_EQ(ev.kind, Kind::Binary);
  EXPECT_EQ(ev.payload, "second");
  EXPECT_FALSE(r.mid_message());
}

TEST(WsFrameReader, AFragmentedMessageIsOneEventConsumingAllItsFrames) {
  const std::string m = text("Hel", false) + cont("lo"), n = text("x");
  const std::string all = m + n;
  WsFrameReader r(kMax);
  WsEvent ev;
  EXPECT_EQ(r.next(all, ev), m.size());
  EXPECT_EQ(ev.kind, Kind::Text);
  EXPECT_EQ(ev.payload, "Hello");
  EXPECT_EQ(r.next(std::string_view(all).substr(m.size()), ev), n.size());
  EXPECT_EQ(ev.kind, Kind::Text);
  EXPECT_EQ(ev.payload, "x");
}

TEST(WsFrameReader, EveryInputFedInAnyPiecesGivesTheSameEvents) {
  const std::vector<std::string> inputs = {
      text("Hello"),
      text("Hel", false) + ping("p") + cont("lo", false) + pong("") + cont(", world"),
      text("a") + binary("bc") + ping("") + pong("x") + text("") + close_frame(code_bytes(1000) + "bye"),
      text(std::string(300, 'x')) + binary(std::string(70000, 'y')) + text("z"),
      text("\xF0\x9F", false) + cont("\x98\x80"),
      text("a") + client_frame(true, 0, 1, "unmasked", kMask, Len::Minimal, false) + text("b"),
      text("a") + text("\xC0\xAF") + text("b"),
      text("x", false) + text("y"),
      close_frame("\x03") + text("after"),
      text("a") + client_frame(true, 0, 1, "abc", kMask, Len::Bits16) + text("b"),
      ping("p") + header(true, 0, 1, std::uint64_t{1} << 40),
      text("ok") + client_frame(true, 4, 1, "rsv1"),
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE("input " + std::to_string(i));
    Fed whole = feed(inputs[i], inputs[i].size());
    ASSERT_FALSE(whole.events.empty());
    for (std::size_t chunk = 1; chunk <= 17; ++chunk) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      for (bool release : {false, true}) {
        Fed pieces = feed(inputs[i], chunk, kMax, release);
        EXPECT_EQ(pieces.events, whole.events) << (release ? "with release() between pieces" : "");
        EXPECT_EQ(pieces.consumed, whole.consumed);
      }
    }
  }
}

// ---- length forms ----

TEST(WsFrameReader, SixteenAndSixtyFourBitLengths) {
  // The helper writes the forms the RFC asks for: 126 → 16-bit, 65536 → 64-bit.
  std::string f126 = text(std::string(126, 'a'));
  EXPECT_EQ(f126.substr(0, 4), std::string("\x81\xFE\x00\x7E", 4));
  std::string f65536 = binary(std::string(65536, 'c'));
  EXPECT_EQ(f65536.substr(0, 10), std::string("\x82\xFF\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  for (std::size_t n : {125, 126, 127, 1000, 65535, 65536, 65537, 300000}) {
    SCOPED_TRACE(n);
    std::string p(n, '\0');
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>('a' + i % 26);
    EXPECT_EQ(parse(text(p)), (Evs{text_ev(p)}));
    EXPECT_EQ(parse(binary(p)), (Evs{binary_ev(p)}));
  }
}

TEST(WsFrameReader, NonMinimalLengthIsAProtocolError) {
  for (std::size_t n : {0, 1, 5, 125}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(parse(client_frame(true, 0, 1, std::string(n, 'a'), kMask, Len::Bits16)), (Evs{error_ev(1002)}));
    EXPECT_EQ(parse(client_frame(true, 0, 2, std::string(n, 'a'), kMask, Len::Bits64)), (Evs{error_ev(1002)}));
  }
  for (std::size_t n : {126, 1000, 65535}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(parse(client_frame(true, 0, 2, std::string(n, 'a'), kMask, Len::Bits64)), (Evs{error_ev(1002)}));
  }
  // The shortest forms of the same lengths are fine.
  EXPECT_EQ(parse(client_frame(true, 0, 1, std::string(126, 'a'), kMask, Len::Bits16)),
            (Evs{text_ev(std::string(126, 'a'))}));
  EXPECT_EQ(parse(client_frame(true, 0, 2, std::string(65536, 'a'), kMask, Len::Bits64)),
            (Evs{binary_ev(std::string(65536, 'a'))}));
}

TEST(WsFrameReader, SixtyFourBitLengthWithTheTopBitSetIsAProtocolError) {
  // §5.2: "the most significant bit MUST be 0".
  EXPECT_EQ(parse(header(true, 0, 2, std::uint64_t{1} << 63, Len::Bits64)), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(header(true, 0, 2, ~std::uint64_t{0}, Len::Bits64)), (Evs{error_ev(1002)}));
}

// ---- frame header violations ----

TEST(WsFrameReader, UnmaskedFrameIsAProtocolError) {
  EXPECT_EQ(parse(client_frame(true, 0, 1, "hello", kMask, Len::Minimal, false)), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(client_frame(true, 0, 9, "", kMask, Len::Minimal, false)), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(text("a", false) + client_frame(true, 0, 0, "b", kMask, Len::Minimal, false)), (Evs{error_ev(1002)}));
}

TEST(WsFrameReader, RsvBitsAreAProtocolError) {
  for (std::uint8_t rsv = 1; rsv <= 7; ++rsv) {  // RSV3 = 1, RSV2 = 2, RSV1 = 4, and together
    SCOPED_TRACE(int{rsv});
    EXPECT_EQ(parse(client_frame(true, rsv, 1, "x")), (Evs{error_ev(1002)}));
    EXPECT_EQ(parse(client_frame(true, rsv, 9, "")), (Evs{error_ev(1002)}));
  }
  EXPECT_EQ(parse(text("a", false) + client_frame(true, 4, 0, "b")), (Evs{error_ev(1002)}));
}

TEST(WsFrameReader, UnknownOpcodesAreAProtocolError) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    SCOPED_TRACE(int{op});
    EXPECT_EQ(parse(client_frame(true, 0, op, "x")), (Evs{error_ev(1002)}));
    EXPECT_EQ(parse(client_frame(false, 0, op, "")), (Evs{error_ev(1002)}));
    EXPECT_EQ(parse(text("a", false) + client_frame(true, 0, op, "")), (Evs{error_ev(1002)}));
  }
}

TEST(WsFrameReader, FragmentedControlFrameIsAProtocolError) {
  EXPECT_EQ(parse(client_frame(false, 0, 9, "p")), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(client_frame(false, 0, 10, "")), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(client_frame(false, 0, 8, code_bytes(1000))), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(text("a", false) + client_frame(false, 0, 9, "p") + cont("b")), (Evs{error_ev(1002)}));
}

TEST(WsFrameReader, ControlFrameOver125BytesIsAProtocolError) {
  EXPECT_EQ(parse(ping(std::string(126, 'p'))), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(pong(std::string(126, 'p'))), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(close_frame(code_bytes(1000) + std::string(124, 'r'))), (Evs{error_ev(1002)}));
  EXPECT_EQ(parse(client_frame(true, 0, 9, std::string(70000, 'p'))), (Evs{error_ev(1002)}));
  // 125 bytes, written in the 16-bit form, is still not allowed (and not minimal either).
  EXPECT_EQ(parse(client_frame(true, 0, 9, std::string(125, 'p'), kMask, Len::Bits16)), (Evs{error_ev(1002)}));
}

// ---- the size limit ----

TEST(WsFrameReader, MessageOfExactlyMaxBytesIsAcceptedOneMoreIsTooBig) {
  constexpr std::size_t max = 16;
  EXPECT_EQ(parse(text(std::string(16, 'a')), max), (Evs{text_ev(std::string(16, 'a'))}));
  EXPECT_EQ(parse(text(std::string(17, 'a')), max), (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(binary(std::string(16, 'b')), max), (Evs{binary_ev(std::string(16, 'b'))}));
  EXPECT_EQ(parse(binary(std::string(17, 'b')), max), (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(text(std::string(1000, 'a')), max), (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(binary(std::string(70000, 'b')), max), (Evs{error_ev(1009)}));
  // With the default limit of these tests, exactly 1 MiB passes and one byte more does not.
  EXPECT_EQ(feed(binary(std::string(kMax, 'b')), 65536).events, (Evs{binary_ev(std::string(kMax, 'b'))}));
  EXPECT_EQ(feed(binary(std::string(kMax + 1, 'b')), 65536).events, (Evs{error_ev(1009)}));
}

TEST(WsFrameReader, FragmentsSummingOverMaxAreTooBig) {
  constexpr std::size_t max = 16;
  EXPECT_EQ(parse(text(std::string(8, 'a'), false) + cont(std::string(8, 'b')), max),
            (Evs{text_ev(std::string(8, 'a') + std::string(8, 'b'))}));
  EXPECT_EQ(parse(text(std::string(8, 'a'), false) + cont(std::string(9, 'b')), max), (Evs{error_ev(1009)}));
  EXPECT_EQ(
      parse(binary(std::string(5, 'a'), false) + cont(std::string(5, 'b'), false) + cont(std::string(7, 'c')), max),
      (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(text(std::string(16, 'a'), false) + cont("", false) + cont("b"), max), (Evs{error_ev(1009)}));
  // Control frames between the fragments are not part of the message.
  EXPECT_EQ(parse(text(std::string(8, 'a'), false) + ping(std::string(20, 'p')) + cont(std::string(8, 'b')), max),
            (Evs{ping_ev(std::string(20, 'p')), text_ev(std::string(8, 'a') + std::string(8, 'b'))}));
  // Each message has the whole limit: the previous one does not count.
  EXPECT_EQ(parse(text(std::string(16, 'a')) + text(std::string(10, 'b'), false) + cont(std::string(6, 'c')), max),
            (Evs{text_ev(std::string(16, 'a')), text_ev(std::string(10, 'b') + std::string(6, 'c'))}));
}

TEST(WsFrameReader, TooBigIsRefusedFromTheHeaderAlone) {
  // The reader is bounded: a declared length over the limit fails before any payload arrives,
  // so a client cannot make it wait for (or buffer) what it will refuse.
  EXPECT_EQ(parse(header(true, 0, 2, std::uint64_t{1} << 62), 4096), (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(header(true, 0, 1, 65535), 4096), (Evs{error_ev(1009)}));
  EXPECT_EQ(parse(text(std::string(4000, 'a'), false) + header(true, 0, 0, 97), 4096), (Evs{error_ev(1009)}));
}

// ---- UTF-8 ----

TEST(WsFrameReader, TextThatIsNotUtf8IsBadPayload) {
  for (std::string bad : {"\xff", "\xC3", "ok\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xF8\x88\x80\x80\x80"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(parse(text(bad)), (Evs{error_ev(1007)}));
  }
}

TEST(WsFrameReader, Utf8IsCheckedOverTheWholeFragmentedMessage) {
  // Invalid only when joined, or invalid across the boundary.
  EXPECT_EQ(parse(text("\xC0", false) + cont("\xAF")), (Evs{error_ev(1007)}));       // overlong '/'
  EXPECT_EQ(parse(text("a\xED", false) + cont("\xA0\x80")), (Evs{error_ev(1007)}));  // a surrogate
  EXPECT_EQ(parse(text("ok", false) + cont("\xE2\x82")), (Evs{error_ev(1007)}));     // truncated at the end
  EXPECT_EQ(parse(text("\xE2\x82", false) + cont("")), (Evs{error_ev(1007)}));
  // Valid multi-byte characters split anywhere are fine.
  const std::string s = "\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\xA9";  // € 😀 é
  for (std::size_t k = 0; k <= s.size(); ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(parse(text(s.substr(0, k), false) + cont(s.substr(k))), (Evs{text_ev(s)}));
    for (std::size_t j = k; j <= s.size(); ++j)
      ASSERT_EQ(parse(text(s.substr(0, k), false) + cont(s.substr(k, j - k), false) + cont(s.substr(j))),
                (Evs{text_ev(s)}));
  }
}

// ---- after an error ----

TEST(WsFrameReader, AfterAnErrorNothingMoreIsConsumed) {
  const std::vector<std::pair<std::string, std::uint16_t>> violations = {
      {client_frame(true, 0, 1, "x", kMask, Len::Minimal, false), 1002},
      {client_frame(true, 0, 3, "x"), 1002},
      {close_frame("\x03"), 1002},
      {text("\xff"), 1007},
      {text(std::string(17, 'a')), 1009},
  };
  for (const auto& [bytes, code] : violations) {
    SCOPED_TRACE(code);
    WsFrameReader r(16);
    EXPECT_FALSE(r.failed());
    WsEvent ev;
    std::size_t n = r.next(bytes, ev);
    EXPECT_LE(n, bytes.size());
    EXPECT_EQ(ev.kind, Kind::Error);
    EXPECT_EQ(ev.code, code);
    EXPECT_TRUE(r.failed());
    for (int i = 0; i < 3; ++i) {
      WsEvent again;
      EXPECT_EQ(r.next(text("valid"), again), 0u);
      EXPECT_TRUE(again.kind == Kind::None || again.kind == Kind::Error) << static_cast<int>(again.kind);
      EXPECT_TRUE(r.failed());
    }
    r.release();
    WsEvent after;
    EXPECT_EQ(r.next(ping(""), after), 0u);
    EXPECT_TRUE(r.failed());
  }
}

TEST(WsFrameReader, AnErrorMidBufferStopsThere) {
  const std::string all = text("a") + client_frame(true, 0, 1, "b", kMask, Len::Minimal, false) + text("c");
  Fed run = feed(all, all.size());
  EXPECT_EQ(run.events, (Evs{text_ev("a"), error_ev(1002)}));
  EXPECT_LE(run.consumed, all.size() - text("c").size());  // the frame after it is never read
}

// ---- empty frames at the end of the input ----

TEST(WsFrameReader, ZeroLengthFrameAtTheEndOfTheInputCompletes) {
  {
    WsFrameReader r(kMax);
    WsEvent ev;
    const std::string f = text("");
    EXPECT_EQ(r.next(f, ev), f.size());
    EXPECT_EQ(ev.kind, Kind::Text);  // not None: nothing more is coming for it
    EXPECT_EQ(ev.payload, "");
    EXPECT_FALSE(r.mid_message());
  }
  {
    // The same when the header's last byte arrives on its own.
    WsFrameReader r(kMax);
    WsEvent ev;
    const std::string f = binary("");
    EXPECT_EQ(r.next(std::string_view(f).substr(0, f.size() - 1), ev), f.size() - 1);
    EXPECT_EQ(ev.kind, Kind::None);
    EXPECT_EQ(r.next(std::string_view(f).substr(f.size() - 1), ev), 1u);
    EXPECT_EQ(ev.kind, Kind::Binary);
    EXPECT_EQ(ev.payload, "");
  }
  EXPECT_EQ(parse(text("a") + text("")), (Evs{text_ev("a"), text_ev("")}));
  EXPECT_EQ(parse(text("ab", false) + cont("")), (Evs{text_ev("ab")}));
  EXPECT_EQ(parse(text("ab", false) + ping("")), (Evs{ping_ev("")}));
  EXPECT_EQ(parse(text("x") + close_frame("")), (Evs{text_ev("x"), close_ev(0)}));
}

// ---- release() ----

TEST(WsFrameReader, ReleaseMidMessageLosesNothing) {
  const std::string all = text("Hello ", false) + ping("pi") + cont("wor", false) + cont("ld") + text("next");
  const Evs want{ping_ev("pi"), text_ev("Hello world"), text_ev("next")};
  ASSERT_EQ(parse(all), want);
  // Split at every byte: the first part read, release(), then the rest.
  for (std::size_t at = 1; at < all.size(); ++at) {
    SCOPED_TRACE(at);
    WsFrameReader r(kMax);
    Evs got;
    for (std::string_view part : {std::string_view(all).substr(0, at), std::string_view(all).substr(at)}) {
      while (!part.empty()) {
        WsEvent ev;
        std::size_t n = r.next(part, ev);
        part.remove_prefix(n);
        if (ev.kind == Kind::None) break;
        got.push_back({ev.kind, std::string(ev.payload), ev.code});
      }
      r.release();
    }
    EXPECT_EQ(got, want);
  }
}

TEST(WsFrameReader, MidMessageTracksPartlyReadFramesAndMessages) {
  WsFrameReader r(kMax);
  EXPECT_FALSE(r.mid_message());
  WsEvent ev;
  const std::string first = text("abc", false), second = cont("def");
  EXPECT_EQ(r.next(std::string_view(first).substr(0, 1), ev), 1u);  // one header byte
  EXPECT_TRUE(r.mid_message());
  r.release();
  EXPECT_EQ(r.next(std::string_view(first).substr(1, 7), ev), 7u);  // the header and one payload byte
  EXPECT_TRUE(r.mid_message());
  r.release();
  EXPECT_EQ(r.next(std::string_view(first).substr(8), ev), first.size() - 8);  // the first fragment is in
  EXPECT_EQ(ev.kind, Kind::None);
  EXPECT_TRUE(r.mid_message());
  r.release();
  EXPECT_EQ(r.next(second, ev), second.size());
  EXPECT_EQ(ev.kind, Kind::Text);
  EXPECT_EQ(ev.payload, "abcdef");
  EXPECT_FALSE(r.mid_message());
  // Idle: release() frees the buffers, and the reader goes on working.
  WsEvent next;
  EXPECT_EQ(r.next("", next), 0u);
  r.release();
  const std::string again = text("again");
  EXPECT_EQ(r.next(again, next), again.size());
  EXPECT_EQ(next.kind, Kind::Text);
  EXPECT_EQ(next.payload, "again");
}

// ---- the builders ----

TEST(WsFrameBuilders, AppendFrameWritesAFinalUnmaskedHeader) {
  struct Case {
    std::size_t n;
    std::string header;
  };
  const std::vector<Case> cases = {
      {0, std::string("\x81\x00", 2)},
      {1, std::string("\x81\x01", 2)},
      {125, std::string("\x81\x7D", 2)},
      {126, std::string("\x81\x7E\x00\x7E", 4)},
      {65535, std::string("\x81\x7E\xFF\xFF", 4)},
      {65536, std::string("\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10)},
      {70000, std::string("\x81\x7F\x00\x00\x00\x00\x00\x01\x11\x70", 10)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.n);
    std::string payload(c.n, 'q');
    std::string out = "before";
    net::append_ws_frame(out, WsOpcode::Text, payload);
    ASSERT_EQ(out.size(), 6 + c.header.size() + c.n);
    EXPECT_EQ(out.substr(0, 6), "before");
    EXPECT_EQ(out.substr(6, c.header.size()), c.header);
    EXPECT_EQ(out.substr(6 + c.header.size()), payload);
  }
}

TEST(WsFrameBuilders, AppendFrameSetsTheOpcode) {
  const std::vector<std::pair<WsOpcode, unsigned char>> ops = {
      {WsOpcode::Text, 0x81}, {WsOpcode::Binary, 0x82}, {WsOpcode::Close, 0x88},
      {WsOpcode::Ping, 0x89}, {WsOpcode::Pong, 0x8A},
  };
  for (auto [op, b0] : ops) {
    std::string out;
    net::append_ws_frame(out, op, "xy");
    EXPECT_EQ(out, std::string({static_cast<char>(b0), '\x02', 'x', 'y'}));
  }
  std::string out;
  net::append_ws_frame(out, WsOpcode::Close, net::ws_close_payload(1000, "bye"));
  EXPECT_EQ(out, std::string("\x88\x05", 2) + code_bytes(1000) + "bye");
}

TEST(WsFrameBuilders, ClosePayloadIsTheCodeInNetworkOrderThenTheReason) {
  EXPECT_EQ(net::ws_close_payload(1000, "bye"), std::string("\x03\xE8", 2) + "bye");
  EXPECT_EQ(net::ws_close_payload(1002, ""), std::string("\x03\xEA", 2));
  EXPECT_EQ(net::ws_close_payload(4999, "x"), std::string("\x13\x87x", 3));
  EXPECT_EQ(net::ws_close_payload(1009, "caf\xC3\xA9"), std::string("\x03\xF1", 2) + "caf\xC3\xA9");
}

TEST(WsFrameBuilders, ClosePayloadCutsTheReasonTo123BytesOnACharacterBoundary) {
  auto reason_of = [](const std::string& p) { return p.substr(2); };
  std::string p = net::ws_close_payload(1000, std::string(200, 'a'));
  EXPECT_EQ(p.size(), 125u);
  EXPECT_EQ(reason_of(p), std::string(123, 'a'));
  EXPECT_EQ(net::ws_close_payload(1000, std::string(123, 'a')).size(), 125u);
  EXPECT_EQ(net::ws_close_payload(1000, std::string(124, 'a')).size(), 125u);
  // é (2 bytes) at bytes 122-123: it does not fit whole, so it goes.
  EXPECT_EQ(reason_of(net::ws_close_payload(1000, std::string(122, 'a') + "\xC3\xA9")), std::string(122, 'a'));
  // € (3 bytes) at bytes 121-123 goes; at 120-122 it fits.
  EXPECT_EQ(reason_of(net::ws_close_payload(1000, std::string(121, 'a') + "\xE2\x82\xAC")), std::string(121, 'a'));
  EXPECT_EQ(reason_of(net::ws_close_payload(1000, std::string(120, 'a') + "\xE2\x82\xAC" + "zz")),
            std::string(120, 'a') + "\xE2\x82\xAC");
  // 😀 (4 bytes) repeated: whole characters only, at most 123 bytes.
  std::string emoji;
  for (int i = 0; i < 40; ++i) emoji += "\xF0\x9F\x98\x80";
  std::string r = reason_of(net::ws_close_payload(1000, emoji));
  EXPECT_EQ(r.size(), 120u);
  EXPECT_EQ(r, emoji.substr(0, 120));
  // What it builds, a client-side reader would take: a valid close frame payload.
  for (std::size_t n = 118; n <= 130; ++n) {
    std::string reason = std::string(n % 3, 'a') + emoji.substr(0, n);
    std::string payload = net::ws_close_payload(3000, reason);
    EXPECT_LE(payload.size(), 125u);
    EXPECT_EQ(parse(close_frame(payload)), (Evs{close_ev(3000, payload.substr(2))})) << n;
  }
}

TEST(WsFrameBuilders, CloseCodeValidity) {
  for (std::uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999})
    EXPECT_TRUE(net::ws_close_code_valid(c)) << c;
  for (std::uint16_t c : {0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535})
    EXPECT_FALSE(net::ws_close_code_valid(c)) << c;
}

TEST(WsFrameBuilders, AcceptKeyIsTheRfcValue) {
  // RFC 6455 §1.3 (and §4.2.2): the key of the sample handshake and its accept value.
  EXPECT_EQ(net::ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(net::ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  EXPECT_EQ(net::ws_accept_key("AQIDBAUGBwgJCgsMDQ4PEA=="), "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
}

TEST(WsFrameBuilders, AcceptResponseIsA101WithTheAcceptHeader) {
  std::string r = net::ws_accept_response("dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(r.rfind("HTTP/1.1 101", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nUpgrade: websocket\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nConnection: Upgrade\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos) << r;
  ASSERT_GE(r.size(), 4u);
  EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n");
  EXPECT_EQ(r.find("\r\n\r\n"), r.size() - 4) << "one header block, nothing after it";
  EXPECT_EQ(r.find("Sec-WebSocket-Extensions"), std::string::npos) << "no extension is negotiated";
}
