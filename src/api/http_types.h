// api/: REST handlers — parse the request, call chat/, render JSON — plus routing, rate
// limiting and metrics. Knows HTTP only through these plain structs: no Beast here, so the
// handlers compile fast and can be tested without sockets. Depends on chat/ and auth/.
#pragma once
#include <string>
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

}  // namespace parley::api
