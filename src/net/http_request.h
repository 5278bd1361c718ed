// The synchronous steps of reading one HTTP/1.1 request with Beast's parser, shared by the
// server (which does the socket reads) and the fuzz targets (which feed bytes directly):
// parse the header, check its framing on the raw bytes, turn the message into api::Request.
// HTTP only: no WebSocket, no Asio.
#pragma once
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.h"

namespace parley::net {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

struct HeadStep {
  enum Status { need_more, done, refused } status = need_more;
  boost::beast::error_code ec;     // refused by the parser (set) or by the framing check (clear)
  std::string_view framing_error;  // refused by the framing check: the 400 message
};

// Feeds `data` — every byte received for this request so far, of which the first `parsed`
// were fed by earlier calls and are still at its front — to `parser` until its header is
// complete. `parsed` advances by what the parser used. need_more: call again once more bytes
// have arrived. done: the header, data[0, parsed), passed api::framing_error; the caller
// drops those bytes from its buffer and reads the body with the same parser. refused: the
// parser failed (ec: malformed, body_limit, header_limit, …) or the framing is ambiguous.
HeadStep feed_head(RequestParser& parser, std::string_view data, std::size_t& parsed);

// The api::Request of a parsed message (its body is moved out).
api::Request to_api_request(boost::beast::http::request<boost::beast::http::string_body>& req, std::string remote_ip);

}  // namespace parley::net
