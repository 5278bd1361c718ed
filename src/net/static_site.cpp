#include "net/static_site.h"

#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace parley::net {
namespace fs = std::filesystem;

std::string StaticSite::content_type_for(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},           {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},               {".png", "image/png"},
      {".ico", "image/x-icon"},                {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  for (auto [ext, type] : kTypes)
    if (name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext) return std::string(type);
  return "application/octet-stream";
}

void StaticSite::add(std::string path, std::string body) {
  if (files_.size() >= kMaxFiles)
    throw std::runtime_error("web directory: more than " + std::to_string(kMaxFiles) + " files");
  if (body.size() > kMaxFileBytes) throw std::runtime_error("web directory: " + path + " is larger than 4 MiB");
  unsigned char h[crypto_generichash_BYTES_MIN];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(body.data()), body.size(), nullptr, 0);
  char hex[2 * sizeof h + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  File f{std::move(body), content_type_for(path), std::string("\"") + hex + "\""};
  files_.insert_or_assign(std::move(path), std::move(f));
}

std::shared_ptr<const StaticSite> StaticSite::from(const std::map<std::string, std::string>& files) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  auto site = std::make_shared<StaticSite>();
  for (const auto& [path, body] : files) site->add(path, body);
  return site;
}

std::shared_ptr<const StaticSite> StaticSite::load(const std::string& dir) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  auto site = std::make_shared<StaticSite>();
  std::error_code ec;
  fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) throw std::runtime_error("web directory " + dir + " is not a readable directory");
  std::size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in && !in.eof()) throw std::runtime_error("web directory: cannot read " + it->path().string());
    std::string b = std::move(body).str();
    total += b.size();
    if (total > kMaxTotalBytes) throw std::runtime_error("web directory: more than 16 MiB in all");
    site->add("/" + fs::relative(it->path(), root).generic_string(), std::move(b));
  }
  if (ec) throw std::runtime_error("web directory " + dir + ": " + ec.message());
  return site;
}

const StaticSite::File* StaticSite::find(std::string_view path) const {
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

bool StaticSite::not_modified(std::string_view inm, std::string_view etag) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  if (trim(inm) == "*") return true;
  while (!inm.empty()) {
    auto comma = inm.find(',');
    std::string_view tag = trim(inm.substr(0, comma));
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);  // If-None-Match compares weakly
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    inm.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace parley::net
