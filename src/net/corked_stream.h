#pragma once
// Internal to net/ (names Beast types): the layer under a WebSocket session's Beast stream that
// lets the frames that are ready together leave in one write.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::net {

// A pass-through stream over the connection's tcp_stream, with one addition: while corked,
// or while a flush is in flight, what Beast writes (frame headers and payloads, pings, pongs,
// close frames) is appended to a buffer and the write completes at once; flush() then sends
// the buffer in one write. So a batch of queued frames costs one syscall instead of one per
// frame. Bytes never interleave on the socket: Beast runs one write at a time, so appended
// bytes are whole frames in order, and whatever Beast writes while a flush is in flight (a
// pong answered from the read side) joins the buffer and leaves after it.
// Everything runs on the connection's strand. Bounded: the buffer holds at most one batch of
// frames plus the control frames Beast adds meanwhile (the writer flushes after each batch).
class CorkedStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using next_layer_type = boost::beast::tcp_stream;

  explicit CorkedStream(boost::beast::tcp_stream& s) : s_(s), idle_(s.get_executor()) {}

  executor_type get_executor() { return s_.get_executor(); }
  next_layer_type& next_layer() { return s_; }
  const next_layer_type& next_layer() const { return s_; }

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& b, Handler&& h) {
    return s_.async_read_some(b, std::forward<Handler>(h));
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& buffers) {
          if (!corked_ && !busy_) {  // nothing of ours in flight: straight through
            // Whole, not write_some: what Beast hands over at once is one or more whole
            // frames, so the buffer never holds half a frame of Beast's when
            // append_text_frame() adds one.
            busy_ = true;
            ++socket_writes_;
            boost::asio::async_write(s_, buffers,
                                [this, h = std::move(handler)](boost::system::error_code ec, std::size_t n) mutable {
                                  busy_ = false;
                                  if (ec && !error_) error_ = ec;
                                  idle_.cancel();
                                  std::move(h)(ec, n);
                                });
            return;
          }
          std::size_t n = boost::asio::buffer_size(buffers);
          auto ec = error_;
          if (!ec) {
            auto old = buffer_.size();
            buffer_.resize(old + n);
            boost::asio::buffer_copy(boost::asio::buffer(buffer_.data() + old, n), buffers);
          }
          auto ex = boost::asio::get_associated_executor(handler, s_.get_executor());
          boost::asio::post(ex, [h = std::move(handler), ec, n]() mutable { std::move(h)(ec, ec ? 0 : n); });
        },
        token, b);
  }

  // From now on writes are buffered, until flush().
  void cork() { corked_ = true; }
  // Appends one whole text frame (FIN, unmasked, uncompressed: a server's frame without
  // permessage-deflate, which the sessions do not negotiate), header and payload, as Beast
  // would frame it. The writer's batch path: a batch of shared frames costs one copy each
  // into the buffer instead of one Beast write operation (and one completion posted) per
  // frame. Only while corked, between Beast's own writes (the writer's strand is not inside
  // a Beast write then, and a write that went straight through was whole), so frames never
  // interleave; the caller checks that the stream is open.
  void append_text_frame(std::string_view payload) {
    unsigned char h[10];
    std::size_t n = payload.size(), len;
    h[0] = 0x81;  // FIN | text
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
    if (error_) return;  // flush() reports it
    buffer_.append(reinterpret_cast<const char*>(h), len);
    buffer_.append(payload);
  }
  // Sends everything buffered in as few writes as the socket takes; ends corking. (Defined in
  // ws_session.cpp, so that Beast is compiled in one translation unit less.)
  boost::asio::awaitable<boost::system::error_code> flush();
  // What is buffered, written from here if nothing of ours is in flight and the socket takes
  // it all without waiting (a non-blocking write): true, and corking ends. Else false, and
  // what is left stays buffered, corked, for flush(); a socket error is kept for flush() to
  // report. (Defined in ws_session.cpp.) Saves the asynchronous write's completion (a post
  // and a coroutine resumption) when the socket has room, which is almost always.
  bool write_now();
  bool pending() const { return !buffer_.empty(); }  // bytes buffered, not yet written
  bool corked() const { return corked_; }
  // Gives the buffers' memory back (they keep the capacity of the largest batch) when nothing
  // is buffered or in flight: an idle connection's (called by the keep-alive sweep).
  void release() {
    if (corked_ || busy_ || !buffer_.empty()) return;
    std::string().swap(buffer_);
    std::string().swap(out_);
  }
  std::size_t socket_writes() const { return socket_writes_; }  // writes issued to the socket

 private:
  boost::beast::tcp_stream& s_;
  boost::asio::steady_timer idle_;  // wakes a flush waiting for a write in flight
  std::string buffer_, out_;
  bool corked_ = false, busy_ = false;
  std::size_t socket_writes_ = 0;
  boost::system::error_code error_;  // the first write error: every later write fails with it
};

// Beast's WebSocket close handshake tears the connection down through the next layer.
inline void teardown(boost::beast::role_type role, CorkedStream& s, boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, s.next_layer().socket(), ec);
}
template <class Handler>
void async_teardown(boost::beast::role_type role, CorkedStream& s, Handler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, s.next_layer().socket(), std::forward<Handler>(handler));
}

}  // namespace parley::net
