// The byte pipe under a WebSocket session: frames appended while corked leave in one socket
// write, whole and in order, and read back as a plain Beast client reads them; the session's
// own 101 answer completes Beast's client handshake.
#include "net/corked_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

using namespace parley;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// A connected pair of tcp_streams on loopback.
struct Pair {
  asio::io_context ioc;
  beast::tcp_stream server{ioc}, client{ioc};
  Pair() {
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.socket().connect(a.local_endpoint());
    server.socket() = a.accept();
  }
};

// Reads n messages on the client side (a plain Beast client).
asio::awaitable<std::vector<std::string>> read_frames(websocket::stream<beast::tcp_stream&>& ws, int n) {
  std::vector<std::string> got;
  for (int i = 0; i < n; ++i) {
    beast::flat_buffer b;
    auto [ec, len] = co_await ws.async_read(b, tuple_awaitable);
    if (ec) break;
    got.push_back(beast::buffers_to_string(b.data()));
  }
  co_return got;
}
// The upgrade of the pair: the client handshakes with Beast; the server reads the request and
// answers with net::ws_accept_response() through the corked layer, as WsSession does.
asio::awaitable<void> upgrade(beast::tcp_stream& server, net::CorkedStream& cork,
                              websocket::stream<beast::tcp_stream&>& client) {
  using namespace asio::experimental::awaitable_operators;
  auto accept = [&]() -> asio::awaitable<void> {
    beast::flat_buffer b;
    http::request<http::string_body> req;
    co_await http::async_read(server, b, req, asio::use_awaitable);
    EXPECT_TRUE(websocket::is_upgrade(req));
    cork.cork();
    cork.append_raw(net::ws_accept_response(req[http::field::sec_websocket_key]));
    EXPECT_FALSE(co_await cork.flush());
  };
  auto handshake = [&]() -> asio::awaitable<void> { co_await client.async_handshake("x", "/", asio::use_awaitable); };
  co_await (accept() && handshake());
}
}  // namespace

TEST(CorkedStream, FramesAppendedWhileCorkedLeaveInOneSocketWriteInOrder) {
  Pair p;
  net::CorkedStream cork(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  std::vector<std::string> got;
  std::size_t writes_before = 0, writes_after = 0;
  bool flushed_ok = false, handshook = false;
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        co_await upgrade(p.server, cork, client);
        handshook = true;
        writes_before = cork.socket_writes();
        cork.cork();
        for (int i = 0; i < 10; ++i) cork.append_text_frame("frame " + std::to_string(i));
        EXPECT_EQ(cork.socket_writes(), writes_before);  // nothing reached the socket yet
        EXPECT_TRUE(cork.pending());
        flushed_ok = !co_await cork.flush();
        writes_after = cork.socket_writes();
        got = co_await read_frames(client, 10);
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(handshook);
  EXPECT_TRUE(flushed_ok);
  EXPECT_EQ(writes_after - writes_before, 1u);  // ten frames, one write
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i], "frame " + std::to_string(i));
}

// Frames of every header length form (7-bit, 16-bit and 64-bit lengths) and control frames
// between them (a ping, then a close with its code and reason) read back whole, in order, from
// one socket write.
TEST(CorkedStream, FramesOfEveryLengthAndControlFramesReadBackWholeInOrder) {
  Pair p;
  net::CorkedStream cork(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  const std::vector<std::string> sent{"",
                                      std::string(125, 'a'),
                                      std::string(126, 'b'),
                                      std::string(65535, 'c'),
                                      std::string(65536, 'd'),
                                      "{\"type\":\"new_message\"}"};
  std::vector<std::string> got;
  int pings = 0;
  std::size_t writes = 0;
  beast::error_code end;
  client.control_callback([&](websocket::frame_type k, beast::string_view) {
    if (k == websocket::frame_type::ping) ++pings;
  });
  client.read_message_max(1 << 20);
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(p.server, cork, client);
        auto before = cork.socket_writes();
        cork.cork();
        for (std::size_t i = 0; i < 3; ++i) cork.append_text_frame(sent[i]);
        cork.append_frame(net::WsOpcode::Ping, {});
        for (std::size_t i = 3; i < sent.size(); ++i) cork.append_text_frame(sent[i]);
        cork.append_frame(net::WsOpcode::Close, net::ws_close_payload(4001, "done"));
        auto reader = [&]() -> asio::awaitable<void> {
          got = co_await read_frames(client, static_cast<int>(sent.size()));
          beast::flat_buffer b;
          auto [ec, n] = co_await client.async_read(b, tuple_awaitable);  // the close
          end = ec;
        };
        auto flush = [&]() -> asio::awaitable<void> {
          EXPECT_FALSE(co_await cork.flush());
          beast::error_code ec;  // the server's end after its close, which Beast's client waits for
          p.server.socket().shutdown(tcp::socket::shutdown_send, ec);
        };
        co_await (flush() && reader());
        writes = cork.socket_writes() - before;
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(writes, 1u);
  EXPECT_EQ(pings, 1);
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i], sent[i]) << "frame " << i;
  EXPECT_EQ(end, websocket::error::closed);
  EXPECT_EQ(client.reason().code, 4001);
  EXPECT_EQ(std::string(client.reason().reason.c_str()), "done");
}

// The writer's inline path: what is appended is written at once when the socket has room
// (corking ends, nothing left); when it has not, the rest stays buffered and corked, and the
// flush that follows sends it, whole and in order.
TEST(CorkedStream, WriteNowSendsWhatTheSocketTakesAndLeavesTheRestToTheFlush) {
  Pair p;
  net::CorkedStream cork(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  client.read_message_max(64 << 20);
  bool small_done = false, big_done = true, pending_after = false, corked_after = false, flushed_ok = false;
  std::vector<std::string> got;
  const std::string big(16 << 20, 'x');  // far more than a socket buffer takes at once
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(p.server, cork, client);
        cork.cork();
        cork.append_text_frame("one");
        cork.append_text_frame("two");
        small_done = cork.write_now();
        EXPECT_FALSE(cork.corked());
        EXPECT_FALSE(cork.pending());
        cork.cork();
        cork.append_text_frame(big);
        cork.append_text_frame("after");
        big_done = cork.write_now();
        pending_after = cork.pending();
        corked_after = cork.corked();
        auto flush = [&]() -> asio::awaitable<void> { flushed_ok = !co_await cork.flush(); };
        auto reader = [&]() -> asio::awaitable<void> { got = co_await read_frames(client, 4); };
        co_await (flush() && reader());
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(20));
  EXPECT_TRUE(small_done);
  EXPECT_FALSE(big_done);
  EXPECT_TRUE(pending_after);
  EXPECT_TRUE(corked_after);
  EXPECT_TRUE(flushed_ok);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "one");
  EXPECT_EQ(got[1], "two");
  EXPECT_EQ(got[2], big);
  EXPECT_EQ(got[3], "after");
}
