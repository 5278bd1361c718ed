#include "api/http_types.h"

#include <algorithm>

namespace parley::api {
namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool is_b64token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/';
}

// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_b64token(std::string_view t) {
  std::size_t body = t.find_last_not_of('=');
  if (body == std::string_view::npos) return false;  // empty, or only "="
  return std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(body) + 1, is_b64token_char);
}

// tchar of RFC 9110 section 5.6.2.
bool is_tchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && is_ows(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_ows(v.back())) v.remove_suffix(1);
  return v;
}

// Calls f(element) for each comma-separated element of a field value, OWS trimmed.
template <class F>
void for_each_element(std::string_view value, F&& f) {
  for (;;) {
    std::size_t comma = value.find(',');
    f(trim_ows(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

std::optional<std::string_view> framing_error(std::string_view head) {
  std::size_t eol = head.find("\r\n");
  std::string_view request_line = head.substr(0, eol);
  bool http10 = request_line.size() >= 8 && request_line.substr(request_line.size() - 8) == "HTTP/1.0";
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);

  int te_codings = 0;  // elements over every Transfer-Encoding line
  bool te_last_chunked = false;
  bool te_other = false;  // chunked twice, another coding, parameters, an empty element
  bool cl_seen = false;
  bool cl_bad = false;
  bool cl_differ = false;
  unsigned long long cl = 0;

  while (!rest.empty()) {
    eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    if (line.empty()) break;  // the end of the header block
    if (is_ows(line.front())) return "obs-folded header lines are not accepted";
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
      return "CR, LF or NUL inside a header line";
    std::size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || name.empty() || !std::all_of(name.begin(), name.end(), is_tchar))
      return "malformed header line";
    std::string_view value = line.substr(colon + 1);
    if (iequals(name, "transfer-encoding")) {
      for_each_element(value, [&](std::string_view coding) {
        ++te_codings;
        bool chunked = iequals(coding, "chunked");
        if (!chunked || te_last_chunked) te_other = true;
        te_last_chunked = chunked;
      });
    } else if (iequals(name, "content-length")) {
      for_each_element(value, [&](std::string_view v) {
        if (v.empty() || v.size() > 18 ||
            !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          cl_bad = true;
          return;
        }
        unsigned long long n = std::stoull(std::string(v));
        if (cl_seen && n != cl) cl_differ = true;
        cl_seen = true;
        cl = n;
      });
    }
  }
  if (te_codings > 0) {
    if (!te_last_chunked) return "Transfer-Encoding must end with chunked";
    if (te_other) return "only the chunked transfer coding is accepted, once";
    if (cl_seen || cl_bad) return "Transfer-Encoding together with Content-Length";
    if (http10) return "Transfer-Encoding in an HTTP/1.0 request";
  }
  if (cl_bad) return "invalid Content-Length";
  if (cl_differ) return "differing Content-Length values";
  return std::nullopt;
}

std::optional<std::string_view> bearer_token(std::string_view a) {
  while (!a.empty() && is_ows(a.front())) a.remove_prefix(1);
  while (!a.empty() && is_ows(a.back())) a.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (a.size() <= kScheme.size() || a[kScheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if ((a[i] | 0x20) != kScheme[i]) return std::nullopt;  // ASCII lower case; "bearer" has no digits
  a.remove_prefix(kScheme.size());
  while (!a.empty() && a.front() == ' ') a.remove_prefix(1);
  if (!is_b64token(a)) return std::nullopt;
  return a;
}

}  // namespace parley::api
