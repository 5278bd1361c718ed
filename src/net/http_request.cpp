#include "net/http_request.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace parley::net {

namespace http = boost::beast::http;

HeadStep feed_head(RequestParser& parser, std::string_view data, std::size_t& parsed) {
  HeadStep step;
  while (!parser.is_header_done()) {
    if (parsed >= data.size()) return step;  // need_more
    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::const_buffer(data.data() + parsed, data.size() - parsed), ec);
    parsed += used;
    if (ec == http::error::need_more) {
      if (used == 0) return step;  // need_more
      continue;                    // the start line was taken; the fields need more
    }
    if (ec) {
      step.status = HeadStep::refused;
      step.ec = ec;
      return step;
    }
  }
  if (auto e = api::framing_error(data.substr(0, parsed))) {
    step.status = HeadStep::refused;
    step.framing_error = *e;
    return step;
  }
  step.status = HeadStep::done;
  return step;
}

api::Request to_api_request(http::request<http::string_body>& req, std::string remote_ip) {
  api::Request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.authorization = std::string(req[http::field::authorization]);
  r.body = std::move(req.body());
  r.remote_ip = std::move(remote_ip);
  return r;
}

}  // namespace parley::net
