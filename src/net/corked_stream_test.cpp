// The corked layer under a WebSocket stream: frames written while corked leave in one socket
// write, in order, and a write that goes straight through is never overtaken.
#include "net/corked_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

using namespace parley;
namespace asio = boost::asio;
namespace beast = boost::beast;
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

// Reads n text frames on the client side (a plain Beast client).
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
// The WebSocket upgrade of the pair: server accepts, client handshakes.
asio::awaitable<void> upgrade(websocket::stream<net::CorkedStream>& server,
                              websocket::stream<beast::tcp_stream&>& client) {
  using namespace asio::experimental::awaitable_operators;
  auto accept = [&]() -> asio::awaitable<void> { co_await server.async_accept(asio::use_awaitable); };
  auto handshake = [&]() -> asio::awaitable<void> { co_await client.async_handshake("x", "/", asio::use_awaitable); };
  co_await (accept() && handshake());
}
}  // namespace

TEST(CorkedStream, FramesWrittenWhileCorkedLeaveInOneSocketWriteInOrder) {
  Pair p;
  websocket::stream<net::CorkedStream> server(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  std::vector<std::string> got;
  std::size_t writes_before = 0, writes_after = 0;
  bool flushed_ok = false;
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(server, client);
        auto& cork = server.next_layer();
        writes_before = cork.socket_writes();
        cork.cork();
        for (int i = 0; i < 10; ++i) {
          auto [ec, n] = co_await server.async_write(asio::buffer("frame " + std::to_string(i)), tuple_awaitable);
          EXPECT_FALSE(ec);
        }
        EXPECT_EQ(cork.socket_writes(), writes_before);  // nothing reached the socket yet
        flushed_ok = !co_await cork.flush();
        writes_after = cork.socket_writes();
        got = co_await read_frames(client, 10);
        // Uncorked, a write goes straight through.
        co_await server.async_write(asio::buffer(std::string("alone")), asio::use_awaitable);
        auto last = co_await read_frames(client, 1);
        EXPECT_EQ(last, std::vector<std::string>{"alone"});
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(flushed_ok);
  EXPECT_EQ(writes_after - writes_before, 1u);  // ten frames, one write
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i], "frame " + std::to_string(i));
}

TEST(CorkedStream, AWriteDuringAFlushWaitsBehindItAndTheCloseHandshakeWorks) {
  Pair p;
  websocket::stream<net::CorkedStream> server(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  std::vector<std::string> got;
  bool closed = false;
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(server, client);
        auto& cork = server.next_layer();
        cork.cork();
        std::string big(1 << 20, 'b');  // larger than the socket buffer: the flush takes a while
        co_await server.async_write(asio::buffer(big), asio::use_awaitable);
        auto flush = [&]() -> asio::awaitable<void> { co_await cork.flush(); };
        auto meanwhile = [&]() -> asio::awaitable<void> {
          co_await server.async_write(asio::buffer(std::string("after")), asio::use_awaitable);
        };
        auto reader = [&]() -> asio::awaitable<void> { got = co_await read_frames(client, 2); };
        co_await (flush() && meanwhile() && reader());
        auto close_server = [&]() -> asio::awaitable<void> {
          co_await server.async_close(websocket::close_code::normal, asio::use_awaitable);
        };
        auto read_close = [&]() -> asio::awaitable<void> {
          beast::flat_buffer b;
          auto [ec, n] = co_await client.async_read(b, tuple_awaitable);
          closed = ec == websocket::error::closed;
        };
        co_await (close_server() && read_close());
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(10));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].size(), 1u << 20);
  EXPECT_EQ(got[1], "after");
  EXPECT_TRUE(closed);
}

// The writer's batch path: frames appended whole (one per header length form: 7-bit, 16-bit
// and 64-bit lengths) read back as a plain Beast client reads them, in order, in one socket
// write, also next to what Beast itself writes (a ping queued in the same batch, a write that
// went straight through just before).
TEST(CorkedStream, AppendedTextFramesReadBackWholeInOrderBesideBeastsOwnWrites) {
  Pair p;
  websocket::stream<net::CorkedStream> server(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  const std::vector<std::string> sent{"", std::string(125, 'a'), std::string(126, 'b'), std::string(65535, 'c'),
                                      std::string(65536, 'd'), "{\"type\":\"new_message\"}"};
  std::vector<std::string> got;
  int pings = 0;
  std::size_t writes = 0;
  client.control_callback([&](websocket::frame_type k, beast::string_view) {
    if (k == websocket::frame_type::ping) ++pings;
  });
  client.read_message_max(1 << 20);
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(server, client);
        auto& cork = server.next_layer();
        co_await server.async_write(asio::buffer(std::string("straight")), asio::use_awaitable);
        auto before = cork.socket_writes();
        cork.cork();
        for (std::size_t i = 0; i < 3; ++i) cork.append_text_frame(sent[i]);
        co_await server.async_ping({}, asio::use_awaitable);  // Beast's frame, buffered in between
        for (std::size_t i = 3; i < sent.size(); ++i) cork.append_text_frame(sent[i]);
        auto reader = [&]() -> asio::awaitable<void> {
          got = co_await read_frames(client, static_cast<int>(sent.size()) + 1);
        };
        auto flush = [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await cork.flush()); };
        co_await (flush() && reader());
        writes = cork.socket_writes() - before;
      },
      asio::detached);
  p.ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(writes, 1u);
  EXPECT_EQ(pings, 1);
  ASSERT_EQ(got.size(), sent.size() + 1);
  EXPECT_EQ(got[0], "straight");
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i + 1], sent[i]) << "frame " << i;
}

// The writer's inline path: what is appended is written at once when the socket has room
// (corking ends, nothing left); when it has not, the rest stays buffered and corked, and the
// flush that follows sends it, whole and in order.
TEST(CorkedStream, WriteNowSendsWhatTheSocketTakesAndLeavesTheRestToTheFlush) {
  Pair p;
  websocket::stream<net::CorkedStream> server(p.server);
  websocket::stream<beast::tcp_stream&> client(p.client);
  client.read_message_max(64 << 20);
  bool small_done = false, big_done = true, pending_after = false, corked_after = false, flushed_ok = false;
  std::vector<std::string> got;
  const std::string big(16 << 20, 'x');  // far more than a socket buffer takes at once
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await upgrade(server, client);
        auto& cork = server.next_layer();
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
