// Test only: captures the lines logged through spdlog's default logger while it lives.
#pragma once
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct LoggedLine {
  spdlog::level::level_enum level;
  std::string text;
};

class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<LoggedLine> lines() {
    std::lock_guard g(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& m) override {
    lines_.push_back({m.level, std::string(m.payload.data(), m.payload.size())});
  }
  void flush_() override {}

 private:
  std::vector<LoggedLine> lines_;
};

class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<LineSink>()), saved_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(saved_); }
  std::vector<LoggedLine> lines() { return sink_->lines(); }
  // Lines that mention storage (the store logs nothing else).
  std::vector<LoggedLine> storage_lines() {
    std::vector<LoggedLine> out;
    for (auto& l : lines())
      if (l.text.find("storage") != std::string::npos) out.push_back(l);
    return out;
  }

 private:
  std::shared_ptr<LineSink> sink_;
  std::shared_ptr<spdlog::logger> saved_;
};
