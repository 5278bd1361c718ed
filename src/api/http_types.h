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

}  // namespace parley::api
