#include "chat/uploads.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/error.h"
#include "common/utf8.h"

namespace parley::chat {

namespace {
bool restricted_name(std::string_view s) {  // RFC 6838 section 4.2
  if (s.empty() || s.size() > 127 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || std::string_view("!#$&-^_.+").find(ch) != std::string_view::npos;
  });
}
}  // namespace

std::string normalize_content_type(std::string_view declared) {
  if (declared.size() > kMaxContentTypeBytes)
    bad_input("content_type must be at most " + std::to_string(kMaxContentTypeBytes) + " bytes");
  std::string t(declared);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return std::tolower(ch); });
  auto slash = t.find('/');
  if (slash == std::string::npos || !restricted_name(std::string_view(t).substr(0, slash)) ||
      !restricted_name(std::string_view(t).substr(slash + 1)))
    return "application/octet-stream";
  return t;
}

void check_upload_filename(std::string_view name) {
  if (name.empty() || name.size() > kMaxUploadFilenameBytes)
    bad_input("filename must be 1-" + std::to_string(kMaxUploadFilenameBytes) + " bytes");
  if (!is_valid_utf8(name)) bad_input("filename must be valid UTF-8");
  for (unsigned char ch : name)
    if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\')
      bad_input("filename must not contain control characters, / or \\");
}

Upload UploadService::create(Id caller, std::string_view filename, std::string_view content_type, std::int64_t size,
                             std::string file_key) {
  check_upload_filename(filename);
  std::string type = normalize_content_type(content_type);
  if (size < 1) bad_input("size must be a positive integer");
  if (size > limits_.max_size)
    throw Error(ErrorKind::TooLarge, "payload_too_large",
                "size must be at most " + std::to_string(limits_.max_size) + " bytes");
  Upload u;
  u.uploader = caller;
  u.filename = std::string(filename);
  u.content_type = type;
  u.size = size;
  u.file_key = std::move(file_key);
  store_.write([&](Tx& tx) {
    if (tx.pending_uploads(caller) >= limits_.max_pending_per_user)
      throw Error(ErrorKind::RateLimited, "too_many_uploads",
                  "at most " + std::to_string(limits_.max_pending_per_user) + " unfinished uploads per user");
    u.created_at = tx.now();
    u.id = tx.insert_upload(u);
  });
  return u;
}

Upload UploadService::pending_for_put(Id caller, Id upload) {
  std::optional<Upload> u;
  store_.read([&](Tx& tx) { u = tx.upload_by_id(upload); });
  if (!u || u->uploader != caller) not_found("upload not found");
  if (u->complete) throw Error(ErrorKind::Conflict, "conflict", "the upload is finished already");
  return *u;
}

Upload UploadService::complete(Id caller, Id upload, std::string_view sha256) {
  std::optional<Upload> u;
  store_.write([&](Tx& tx) {
    u = tx.upload_by_id(upload);
    if (!u || u->uploader != caller) not_found("upload not found (it may have expired)");
    if (!tx.complete_upload(upload, sha256)) throw Error(ErrorKind::Conflict, "conflict", "the upload is finished already");
    u->complete = true;
    u->sha256 = std::string(sha256);
  });
  return *u;
}

Upload UploadService::for_download(std::optional<Id> caller, Id upload) {
  std::optional<Upload> u;
  bool shared = false;
  store_.read([&](Tx& tx) {
    u = tx.upload_by_id(upload);
    shared = u && caller && *caller != u->uploader && tx.upload_shared_with(upload, *caller);
  });
  if (!u || !u->complete) not_found("upload not found");
  if (caller && *caller != u->uploader && !shared) forbidden("not shared with you");
  return *u;
}

std::vector<Upload> UploadService::expire(TimeMs now, int limit) {
  std::vector<Upload> out;
  store_.write([&](Tx& tx) {
    out.clear();
    for (auto& u : tx.expired_uploads(now - limits_.ttl_ms, limit))
      if (tx.delete_upload(u.id)) out.push_back(std::move(u));
  });
  return out;
}

std::vector<Upload> link_attachments(Tx& tx, Id sender, Id message, const std::vector<Id>& uploads) {
  if (uploads.size() > kMaxAttachmentsPerMessage)
    bad_input("attachment_ids holds at most " + std::to_string(kMaxAttachmentsPerMessage) + " ids");
  std::set<Id> seen;
  std::vector<Upload> out;
  int pos = 0;
  for (Id id : uploads) {
    if (!seen.insert(id).second) bad_input("attachment_ids holds an id twice");
    auto u = tx.upload_by_id(id);
    if (!u || u->uploader != sender) bad_input("attachment_ids: no upload " + format_id(id) + " of yours");
    if (!u->complete) bad_input("attachment_ids: upload " + format_id(id) + " is not finished");
    tx.link_attachment(message, id, pos++);
    out.push_back(std::move(*u));
  }
  return out;
}

void fill_attachments(Tx& tx, std::vector<Message>& messages, const std::function<std::string(Id)>& url_of) {
  if (messages.empty()) return;
  std::vector<Id> ids;
  ids.reserve(messages.size());
  for (const auto& m : messages) ids.push_back(m.id);
  std::map<Id, std::vector<Upload>> by_message;
  for (auto& [mid, u] : tx.attachments_of(ids)) by_message[mid].push_back(std::move(u));
  for (auto& m : messages) {
    auto it = by_message.find(m.id);
    m.attachments.clear();
    if (it == by_message.end()) continue;
    m.attachments = std::move(it->second);
    if (url_of)
      for (auto& u : m.attachments) u.url = url_of(u.id);
  }
}

}  // namespace parley::chat
