// net/static_site: the built-in web client's files (web/), loaded once at start-up and served
// from memory by the HTTP session itself — never through the REST handler or the storage pool.
// No Beast here: the session turns a Hit into a response.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace parley::net {

class StaticSite {
 public:
  // Bounds on what is loaded (a larger directory is refused at start-up, not half-served).
  static constexpr std::size_t kMaxFiles = 256;
  static constexpr std::size_t kMaxFileBytes = 4 * 1024 * 1024;
  static constexpr std::size_t kMaxTotalBytes = 16 * 1024 * 1024;

  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // strong, quoted: a hash of the body
  };

  // Loads every regular file under dir (subdirectories included, dot-files skipped), served at
  // "/" + its path relative to dir; "/" serves index.html. Throws std::runtime_error when the
  // directory is unreadable or over a bound.
  static std::shared_ptr<const StaticSite> load(const std::string& dir);
  // From memory (tests): path ("/x.js") → body; the content type comes from the extension.
  static std::shared_ptr<const StaticSite> from(const std::map<std::string, std::string>& files);

  // The file at a request path (the path part of the target, no query), or null.
  const File* find(std::string_view path) const;
  std::size_t size() const { return files_.size(); }

  // The headers every static answer carries (besides Content-Type / ETag).
  static constexpr std::string_view kContentSecurityPolicy =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
      "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
      "frame-ancestors 'none'";
  static constexpr std::string_view kCacheControl = "no-cache";  // revalidate with If-None-Match

  // Whether an If-None-Match header value matches etag (a list, or "*"; weak tags compare weakly).
  static bool not_modified(std::string_view if_none_match, std::string_view etag);
  // The Content-Type for a file name, by extension (application/octet-stream when unknown).
  static std::string content_type_for(std::string_view name);

 private:
  void add(std::string path, std::string body);
  std::map<std::string, File, std::less<>> files_;
};

}  // namespace parley::net
