// The two upload routes whose bodies are streamed (PUT and GET /api/uploads/:id): the server
// (net/http_server.cpp) reads or writes the bytes in chunks and asks this class what to do with
// them. No Beast here: it sees the request's head as api::Request (empty body) and bytes as
// buffers. Every call may block (storage, disk): call it on the storage pool.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <sodium.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.h"
#include "auth/url_signer.h"
#include "chat/events.h"
#include "chat/uploads.h"

namespace parley::api {

// An open file, closed when the last holder lets go.
struct OpenFile {
  explicit OpenFile(int f) : fd(f) {}
  ~OpenFile();
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  int fd = -1;
};

// One PUT in progress: the body goes to <dir>/<file_key>.part as it arrives, hashed on the way
// (crypto_hash_sha256 streaming state); finish() checks the size, renames the file to its
// final name and marks the upload finished. Destroyed unfinished, it removes the partial file.
class UploadSink {
 public:
  UploadSink(chat::UploadService& svc, chat::EventPublisher* publisher, chat::Upload upload, std::string part_path,
             std::string final_path, int fd, std::chrono::milliseconds progress_interval);
  ~UploadSink();
  UploadSink(const UploadSink&) = delete;
  UploadSink& operator=(const UploadSink&) = delete;
  std::int64_t size() const { return upload_.size; }
  // nullopt: go on. A Response: refused (more bytes than declared, a disk error); the partial
  // file is removed and nothing is kept.
  std::optional<Response> write(const char* data, std::size_t n);
  // 200 {id, filename, content_type, size, sha256}, or 400 when the body had another size.
  Response finish();

 private:
  void progress(bool force);
  chat::UploadService& svc_;
  chat::EventPublisher* publisher_;
  chat::Upload upload_;
  std::string part_path_, final_path_;
  int fd_;
  bool done_ = false;
  std::int64_t received_ = 0;
  crypto_hash_sha256_state sha_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_progress_{};
};

class UploadTransfers {
 public:
  // authenticate: a bearer token's user (RestApi::authenticate). dir: where files live.
  UploadTransfers(chat::UploadService& svc, std::function<std::optional<Id>(std::string_view)> authenticate,
                  const auth::UrlSigner& signer, chat::EventPublisher* publisher, std::string dir);

  // Whether the server streams this request itself: PUT or GET of /api/uploads/<segment>.
  static bool streamed(std::string_view method, std::string_view target);

  struct PutStart {
    std::optional<Response> refusal;
    std::unique_ptr<UploadSink> sink;
  };
  // The head of a PUT: authenticates, finds the caller's pending upload and checks a declared
  // Content-Length against its size (400 when they differ). A PUT already streaming the same
  // upload (on any instance sharing the directory) → 409.
  PutStart begin_put(const Request& head, std::optional<std::uint64_t> content_length);

  struct Download {
    std::optional<Response> refusal;
    std::shared_ptr<OpenFile> file;
    std::int64_t size = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // Content-Type and the others
  };
  // GET: a signed link (exp, sig) or a bearer token of the uploader or a member of a room
  // where it was sent; the file opened for streaming.
  Download begin_download(const Request& head);

  // Removes expired unfinished uploads (rows and files) and partial files older than the
  // TTL whose upload is gone (left by a crash). Returns how many files it removed.
  std::size_t sweep(TimeMs now);

  // A new upload's file name: 32 random hex digits (nothing of the client's).
  static std::string new_file_key();
  const std::string& dir() const { return dir_; }

 private:
  std::string path_of(const chat::Upload& u, bool part) const;
  chat::UploadService& svc_;
  std::function<std::optional<Id>(std::string_view)> authenticate_;
  const auth::UrlSigner& signer_;
  chat::EventPublisher* publisher_;
  std::string dir_;
};

// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266,
// RFC 5987): quotes, backslashes and anything outside printable ASCII never reach the header.
std::string content_disposition(std::string_view filename);

}  // namespace parley::api
