#include "api/upload_transfers.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "api/json_render.h"
#include "api/rest.h"
#include "common/error.h"

namespace parley::api {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// A partial file untouched this long belongs to no live PUT (a live one writes at least once
// per body idle timeout, 30 s): a new PUT of the same upload may take its place.
constexpr std::chrono::seconds kStalePart{60};

Response from_error(const Error& e) {
  int status = 400;
  switch (e.kind()) {
    case ErrorKind::BadInput: status = 400; break;
    case ErrorKind::Unauthorized: status = 401; break;
    case ErrorKind::Forbidden: status = 403; break;
    case ErrorKind::NotFound: status = 404; break;
    case ErrorKind::Conflict: status = 409; break;
    case ErrorKind::TooLarge: status = 413; break;
    case ErrorKind::RateLimited: status = 429; break;
    case ErrorKind::Unavailable: status = 503; break;
  }
  return error_response(status, e.code(), e.what());
}

bool is_key(std::string_view k) {
  return k.size() == 32 && k.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

struct Target {
  std::optional<Id> id;
  std::optional<std::string> exp, sig;
};
std::optional<Target> parse_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  std::vector<std::string> segs;
  for (auto s : url->segments()) segs.push_back(s);
  if (segs.size() != 3 || segs[0] != "api" || segs[1] != "uploads") return std::nullopt;
  Target t;
  t.id = parse_id(segs[2]);
  for (auto p : url->params()) {
    if (p.key == "exp") t.exp = p.value;
    if (p.key == "sig") t.sig = p.value;
  }
  return t;
}

std::int64_t now_wall() { return now_ms(); }

}  // namespace

OpenFile::~OpenFile() {
  if (fd >= 0) ::close(fd);
}

std::string content_disposition(std::string_view filename) {
  std::string ascii, pct;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char ch : filename) {
    bool printable = ch >= 0x20 && ch < 0x7f;
    ascii += printable && ch != '"' && ch != '\\' && ch != '%' ? static_cast<char>(ch) : '_';
    // RFC 5987 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"
    if (std::isalnum(ch) || std::string_view("!#$&+-.^_`|~").find(static_cast<char>(ch)) != std::string_view::npos) {
      pct += static_cast<char>(ch);
    } else {
      pct += '%';
      pct += kHex[ch >> 4];
      pct += kHex[ch & 15];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + pct;
}

UploadSink::UploadSink(chat::UploadService& svc, chat::EventPublisher* publisher, chat::Upload upload,
                       std::string part_path, std::string final_path, int fd, std::chrono::milliseconds interval)
    : svc_(svc),
      publisher_(publisher),
      upload_(std::move(upload)),
      part_path_(std::move(part_path)),
      final_path_(std::move(final_path)),
      fd_(fd),
      interval_(interval) {
  crypto_hash_sha256_init(&sha_);
}

UploadSink::~UploadSink() {
  if (fd_ >= 0) ::close(fd_);
  if (!done_) ::unlink(part_path_.c_str());
}

void UploadSink::progress(bool force) {
  if (!publisher_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_progress_ < interval_) return;
  last_progress_ = now;
  publisher_->publish(std::make_shared<const chat::Event>(
      chat::UploadProgress{upload_.id, upload_.uploader, received_, upload_.size}));
}

std::optional<Response> UploadSink::write(const char* data, std::size_t n) {
  if (received_ + static_cast<std::int64_t>(n) > upload_.size)
    return error_response(400, "invalid_request", "the body is larger than the upload's size");
  crypto_hash_sha256_update(&sha_, reinterpret_cast<const unsigned char*>(data), n);
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      spdlog::error("upload {}: write failed: {}", upload_.id, std::strerror(errno));
      return error_response(errno == ENOSPC ? 507 : 503, "unavailable", "the upload could not be stored");
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    received_ += w;
  }
  if (received_ < upload_.size) progress(false);
  return std::nullopt;
}

Response UploadSink::finish() {
  if (received_ != upload_.size)
    return error_response(400, "invalid_request",
                          "the body is " + std::to_string(received_) + " bytes; the upload declared " +
                              std::to_string(upload_.size));
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&sha_, digest);
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    return error_response(503, "unavailable", "the upload could not be stored");
  }
  fd_ = -1;
  if (::rename(part_path_.c_str(), final_path_.c_str()) != 0) {
    if (errno == ENOENT)  // removed by the expiry sweep meanwhile: the upload is gone
      return error_response(404, "not_found", "upload not found (it expired)");
    return error_response(503, "unavailable", "the upload could not be stored");
  }
  try {
    upload_ = svc_.complete(upload_.uploader, upload_.id, hex);
  } catch (const Error& e) {
    ::unlink(final_path_.c_str());
    done_ = true;
    return from_error(e);
  }
  done_ = true;
  progress(true);  // the last one: received == total
  Response r;
  r.body = json::serialize(to_json(upload_));
  return r;
}

UploadTransfers::UploadTransfers(chat::UploadService& svc, std::function<std::optional<Id>(std::string_view)> authenticate,
                                 const auth::UrlSigner& signer, chat::EventPublisher* publisher, std::string dir)
    : svc_(svc), authenticate_(std::move(authenticate)), signer_(signer), publisher_(publisher), dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create the uploads directory " + dir_ + ": " + ec.message());
}

bool UploadTransfers::streamed(std::string_view method, std::string_view target) {
  if (method != "PUT" && method != "GET") return false;
  if (target.rfind("/api/uploads/", 0) != 0) return false;
  auto t = parse_target(target);
  return t.has_value();
}

std::string UploadTransfers::new_file_key() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  char hex[33];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  return std::string(hex, 32);
}

std::string UploadTransfers::path_of(const chat::Upload& u, bool part) const {
  if (!is_key(u.file_key)) throw std::runtime_error("upload " + std::to_string(u.id) + " has a malformed file key");
  return dir_ + "/" + u.file_key + (part ? ".part" : "");
}

UploadTransfers::PutStart UploadTransfers::begin_put(const Request& head, std::optional<std::uint64_t> content_length) {
  PutStart out;
  try {
    auto t = parse_target(head.target);
    if (!t || !t->id) bad_input("malformed upload id in path");
    std::optional<Id> user;
    if (auto token = bearer_token(head.authorization)) user = authenticate_(*token);
    if (!user)
      throw Error(ErrorKind::Unauthorized, "unauthorized",
                  head.authorization.empty() ? "missing bearer token" : "invalid or expired token");
    chat::Upload u = svc_.pending_for_put(*user, *t->id);
    if (content_length && *content_length != static_cast<std::uint64_t>(u.size))
      bad_input("Content-Length is " + std::to_string(*content_length) + "; the upload declared " +
                std::to_string(u.size) + " bytes");
    std::string part = path_of(u, true);
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
      fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0 || errno != EEXIST) break;
      struct stat st{};
      bool stale = ::stat(part.c_str(), &st) == 0 &&
                   std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtime) > kStalePart;
      if (!stale) throw Error(ErrorKind::Conflict, "conflict", "this upload is being sent already");
      ::unlink(part.c_str());  // left by a PUT that died (a crash): taken over
    }
    if (fd < 0) {
      spdlog::error("upload {}: cannot create {}: {}", u.id, part, std::strerror(errno));
      throw Error(ErrorKind::Unavailable, "unavailable", "the upload could not be stored");
    }
    std::string final_path = path_of(u, false);
    out.sink = std::make_unique<UploadSink>(svc_, publisher_, std::move(u), std::move(part), std::move(final_path), fd,
                                            std::chrono::milliseconds(100));
  } catch (const Error& e) {
    out.refusal = from_error(e);
  }
  return out;
}

UploadTransfers::Download UploadTransfers::begin_download(const Request& head) {
  Download out;
  try {
    auto t = parse_target(head.target);
    if (!t || !t->id) bad_input("malformed upload id in path");
    std::optional<Id> caller;
    if (t->exp || t->sig) {
      std::int64_t exp = -1;
      if (t->exp && !t->exp->empty() && t->exp->size() < 19 &&
          t->exp->find_first_not_of("0123456789") == std::string::npos)
        exp = std::stoll(*t->exp);
      if (exp < 0 || !t->sig || !signer_.valid(*t->id, exp, *t->sig, now_wall()))
        forbidden("the link is expired or its signature is wrong");
    } else {
      if (auto token = bearer_token(head.authorization)) caller = authenticate_(*token);
      if (!caller)
        throw Error(ErrorKind::Unauthorized, "unauthorized",
                    head.authorization.empty() ? "missing bearer token" : "invalid or expired token");
    }
    chat::Upload u = svc_.for_download(caller, *t->id);
    std::string path = path_of(u, false);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      spdlog::error("upload {}: cannot open {}: {}", u.id, path, std::strerror(errno));
      throw Error(ErrorKind::Unavailable, "unavailable", "the file is not available");
    }
    out.file = std::make_shared<OpenFile>(fd);
    out.size = u.size;
    out.headers = {{"Content-Type", u.content_type},
                   {"Content-Disposition", content_disposition(u.filename)},
                   {"X-Content-Type-Options", "nosniff"},
                   {"Content-Security-Policy", "default-src 'none'; sandbox"},
                   {"Cache-Control", "private, max-age=600"}};
  } catch (const Error& e) {
    out.refusal = from_error(e);
  }
  return out;
}

std::size_t UploadTransfers::sweep(TimeMs now) {
  std::size_t removed = 0;
  for (;;) {
    auto gone = svc_.expire(now, 100);
    for (const auto& u : gone) {
      if (!is_key(u.file_key)) continue;
      removed += ::unlink(path_of(u, true).c_str()) == 0;
      removed += ::unlink(path_of(u, false).c_str()) == 0;
    }
    if (gone.size() < 100) break;
  }
  // Partial files older than the TTL: their upload expired (its row is gone) or a crash left
  // them; no live PUT is older than the TTL's bound on an upload's life.
  std::error_code ec;
  auto limit = std::chrono::milliseconds(svc_.limits().ttl_ms);
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() != ".part") continue;
    std::error_code tec;
    auto mtime = fs::last_write_time(p, tec);
    if (tec) continue;
    if (fs::file_time_type::clock::now() - mtime > limit && fs::remove(p, tec)) ++removed;
  }
  return removed;
}

}  // namespace parley::api
