#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::api {

// Matches a method and a decoded path against patterns like "/api/chatrooms/:id/members".
// The ":name" segments are captured in order.
template <class Handler>
class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  struct Match {
    const Route* route = nullptr;     // nullptr: no route for this path
    bool method_mismatch = false;     // the path exists, with other methods
    std::vector<std::string> params;  // captured segments
  };

  void add(std::string method, std::string pattern, Handler h) {
    routes_.push_back(Route{std::move(method), pattern, split(pattern), std::move(h)});
  }

  Match match(std::string_view method, const std::vector<std::string>& path) const {
    Match out;
    for (const auto& r : routes_) {
      if (r.segments.size() != path.size()) continue;
      std::vector<std::string> params;
      bool ok = true;
      for (std::size_t i = 0; i < path.size() && ok; ++i) {
        if (!r.segments[i].empty() && r.segments[i][0] == ':')
          params.push_back(path[i]);
        else
          ok = r.segments[i] == path[i];
      }
      if (!ok) continue;
      if (r.method != method) {
        out.method_mismatch = true;
        continue;
      }
      out.route = &r;
      out.params = std::move(params);
      out.method_mismatch = false;
      return out;
    }
    return out;
  }

  static std::vector<std::string> split(std::string_view path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < path.size()) {
      if (path[i] == '/') {
        ++i;
        continue;
      }
      std::size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      out.emplace_back(path.substr(i, j - i));
      i = j;
    }
    return out;
  }

 private:
  std::vector<Route> routes_;
};

}  // namespace parley::api
