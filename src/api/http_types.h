// api/: REST handlers — parse the request, call chat/, render JSON — plus routing, rate
// limiting and metrics. Knows HTTP only through these plain structs: no Beast here, so the
// handlers compile fast and can be tested without sockets. Depends on chat/ and auth/.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::api {

struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // path and query as received
  std::string authorization;
  std::string body;
  std::string remote_ip;
};

struct Response {
  int status = 200;
  std::string body;  // empty for 204
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// The token of an `Authorization: Bearer <token>` value (RFC 6750 section 2.1), or nullopt
// when the value is of another scheme or malformed. The scheme is case-insensitive (RFC 7235
// section 2.1); white space around the value is ignored, one or more spaces separate the
// scheme from the token, and the token must be a b64token (letters, digits, -._~+/ and
// trailing =). The view points into `authorization`.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// RFC 9112 message framing (sections 5, 6.1, 6.3) of one request, read from its header block
// `head`: the request line and the header lines exactly as received, through the empty line
// that ends them. nullopt when the body's length is unambiguous; otherwise a fixed message
// for the 400 answer (it never holds bytes of the input), after which the connection must be
// closed, since no byte that follows can be trusted to start a request. Refused:
//  - Transfer-Encoding other than exactly `chunked` (the only coding Parley decodes): a last
//    coding that is not chunked (`chunked, identity`, `identity`, `xchunked`), chunked twice,
//    another coding before it, parameters, or an empty list element; over all TE lines;
//  - Transfer-Encoding together with Content-Length, or in an HTTP/1.0 request;
//  - a Content-Length that is not 1*DIGIT, or several (lines or list elements) that differ;
//  - obs-folded header lines (a line that starts with SP or HTAB), a field name that is not a
//    token (white space before the colon), and CR, LF or NUL inside a line.
std::optional<std::string_view> framing_error(std::string_view head);

}  // namespace parley::api
