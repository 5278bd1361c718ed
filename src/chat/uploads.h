// The bookkeeping of attachments: creating an upload, finishing it, who may read it, which
// unfinished ones have expired, and the uploads a message carries. The bytes themselves are
// streamed by api/upload_transfers (files named by Upload::file_key, never by filename).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/store.h"
#include "chat/types.h"

namespace parley::chat {

// Limits of uploads (each a number with a test; docs/decisions.md "Attachments").
struct UploadLimits {
  std::int64_t max_size = 25 * 1024 * 1024;  // declared size above → 413
  int max_pending_per_user = 20;             // unfinished uploads per user (bounds the table)
  std::int64_t ttl_ms = 3600 * 1000;         // an unfinished upload is removed this long after creation
};
inline constexpr std::size_t kMaxUploadFilenameBytes = 255;
inline constexpr std::size_t kMaxContentTypeBytes = 127;
inline constexpr std::size_t kMaxAttachmentsPerMessage = 10;

// A declared content type, lower-cased, when it is a sane `type/subtype` (RFC 6838 restricted
// names, no parameters); application/octet-stream otherwise. 400 when longer than the limit.
std::string normalize_content_type(std::string_view declared);
// 1-255 bytes of valid UTF-8 without control characters, `/` or `\` (it is metadata only, but
// it is shown back in Content-Disposition); 400 otherwise.
void check_upload_filename(std::string_view name);

class UploadService {
 public:
  UploadService(Store& store, UploadLimits limits) : store_(store), limits_(limits) {}
  const UploadLimits& limits() const { return limits_; }

  // A pending upload of caller's; file_key: the server-made random name of its file.
  Upload create(Id caller, std::string_view filename, std::string_view content_type, std::int64_t size,
                std::string file_key);
  // The pending upload caller may PUT: 404 when unknown or another user's, 409 when finished.
  Upload pending_for_put(Id caller, Id upload);
  // Marks it finished with its sha256 (409 if it was finished meanwhile, 404 if it expired).
  Upload complete(Id caller, Id upload, std::string_view sha256);
  // The finished upload caller may download: its uploader, or an active member of a room
  // where a message carries it. 404 when unknown or unfinished, 403 otherwise. caller
  // nullopt: the request carried a valid signed link (checked by the caller), no user.
  Upload for_download(std::optional<Id> caller, Id upload);
  // Deletes up to `limit` unfinished uploads older than the TTL and returns them (the caller
  // removes their files).
  std::vector<Upload> expire(TimeMs now, int limit);

 private:
  Store& store_;
  UploadLimits limits_;
};

// Inside a send's transaction: checks the ids (at most 10, distinct, each a finished upload
// of the sender's; 400 otherwise) and ties them to message, in order. Returns the uploads.
std::vector<Upload> link_attachments(Tx& tx, Id sender, Id message, const std::vector<Id>& uploads);
// Fills the attachments of messages with one query; url_of (may be empty) signs each link.
void fill_attachments(Tx& tx, std::vector<Message>& messages, const std::function<std::string(Id)>& url_of);

}  // namespace parley::chat
