#pragma once
#include <stdexcept>
#include <string>

namespace parley {

// An expected failure (bad input, forbidden, not found, …). Thrown by the domain and storage,
// mapped to one HTTP status and JSON error shape in api/ (see docs/decisions.md).
enum class ErrorKind {
  BadInput,      // 400
  Unauthorized,  // 401
  Forbidden,     // 403
  NotFound,      // 404
  Conflict,      // 409
  TooLarge,      // 413
  RateLimited,   // 429
  Unavailable,   // 503
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string code, const std::string& message)
      : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }

 private:
  ErrorKind kind_;
  std::string code_;
};

[[noreturn]] inline void bad_input(const std::string& msg) { throw Error(ErrorKind::BadInput, "invalid_request", msg); }
[[noreturn]] inline void forbidden(const std::string& msg) { throw Error(ErrorKind::Forbidden, "forbidden", msg); }
[[noreturn]] inline void not_found(const std::string& msg) { throw Error(ErrorKind::NotFound, "not_found", msg); }

}  // namespace parley
