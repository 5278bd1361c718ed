#pragma once
// Internal to net/ (names Beast's tcp_stream): the layer under a WebSocket session that lets
// the frames that are ready together leave in one write.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/ws_frames.h"

namespace parley::net {

// The byte pipe under a WebSocket session: the session frames what it sends itself
// (net/ws_frames.h) and appends the frames here; flush() or write_now() sends what is buffered
// in as few writes as the socket takes, so a batch of queued frames costs one syscall instead
// of one per frame. Bytes never interleave on the socket: everything goes through this one
// buffer, appended as whole frames, and at most one write is in flight (frames appended while
// it is leave after it). Everything runs on the connection's strand. Bounded: the buffer holds
// at most one batch of frames plus the control frames added meanwhile (the writer flushes
// after each batch).
class CorkedStream {
 public:
  explicit CorkedStream(boost::beast::tcp_stream& s) : s_(s) {}

  boost::beast::tcp_stream& next_layer() { return s_; }

  // From now on writes are buffered, until flush().
  void cork() { corked_ = true; }
  // Appends one whole frame (FIN, unmasked, uncompressed: a server's frame without
  // permessage-deflate, which the sessions do not negotiate), header and payload: a batch of
  // shared frames costs one copy each into the buffer. Whole frames only, so frames never
  // interleave; the caller checks that the connection may still send.
  void append_frame(WsOpcode op, std::string_view payload) {
    if (error_) return;  // flush() reports it
    append_ws_frame(buffer_, op, payload);
  }
  void append_text_frame(std::string_view payload) { append_frame(WsOpcode::Text, payload); }
  // Bytes that are not a frame: the upgrade's 101 response, before any frame.
  void append_raw(std::string_view bytes) {
    if (!error_) buffer_.append(bytes);
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
  bool busy() const { return busy_; }                // a flush's write is in flight
  std::size_t buffered() const { return buffer_.size(); }  // bytes waiting (behind the write in flight)
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
  std::string buffer_, out_;
  bool corked_ = false, busy_ = false;
  std::size_t socket_writes_ = 0;
  boost::system::error_code error_;  // the first write error: every later write fails with it
};

}  // namespace parley::net
