#include "net/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace parley::net {

struct Hub::Impl {
  explicit Impl(boost::asio::io_context& ioc) : order(boost::asio::make_strand(ioc)) {}
  boost::asio::strand<boost::asio::io_context::executor_type> order;  // run_in_order's executor
};

Hub::Hub(boost::asio::io_context& ioc, std::size_t max_pending)
    : impl_(std::make_unique<Impl>(ioc)), max_pending_(std::max<std::size_t>(1, max_pending)) {}
Hub::~Hub() = default;

bool Hub::add(Id user, const std::shared_ptr<WsConnection>& c) {
  std::lock_guard g(mu_);
  if (closing_) return false;
  by_user_[user].push_back(c);
  ++count_;
  return true;
}

void Hub::remove(Id user, const WsConnection* c) {
  std::lock_guard g(mu_);
  auto it = by_user_.find(user);
  if (it == by_user_.end()) return;
  auto& v = it->second;
  auto pos = std::find_if(v.begin(), v.end(), [c](const auto& p) { return p.get() == c; });
  if (pos == v.end()) return;
  v.erase(pos);
  --count_;
  if (v.empty()) by_user_.erase(it);
}

std::size_t Hub::size() const {
  std::lock_guard g(mu_);
  return count_;
}

bool Hub::online(Id user) {
  std::lock_guard g(mu_);
  return by_user_.count(user) != 0;
}

void Hub::run_in_order(std::function<void()> task) {
  {
    std::unique_lock lk(pending_mu_);
    pending_cv_.wait(lk, [&] { return stopped_ || pending_ < max_pending_; });
    if (stopped_) return;
    ++pending_;
  }
  boost::asio::post(impl_->order, [this, t = std::move(task)] {
    try {
      t();
    } catch (const std::exception& e) {
      spdlog::error("event fan-out failed: {}", e.what());
    }
    {
      std::lock_guard g(pending_mu_);
      --pending_;
    }
    pending_cv_.notify_one();
  });
}

void Hub::shutdown() {
  {
    std::lock_guard g(pending_mu_);
    stopped_ = true;
  }
  pending_cv_.notify_all();
}

void Hub::deliver(const std::vector<Id>& users, const api::OutEventPtr& ev) {
  std::vector<std::shared_ptr<WsConnection>> targets;
  {
    std::lock_guard g(mu_);
    for (Id u : users) {
      auto it = by_user_.find(u);
      if (it == by_user_.end()) continue;
      for (const auto& c : it->second)
        if (c->follows(ev->room)) targets.push_back(c);
    }
  }
  for (const auto& c : targets) c->deliver(ev);
}

void Hub::revoke(Id user, Id room) {
  std::vector<std::shared_ptr<WsConnection>> targets;
  {
    std::lock_guard g(mu_);
    auto it = by_user_.find(user);
    if (it != by_user_.end())
      for (const auto& c : it->second)
        if (c->is_chatroom_of(room)) targets.push_back(c);
  }
  for (const auto& c : targets) c->kick(1008, "not a member");
}

void Hub::close_all(std::uint16_t code, const std::string& reason) {
  std::vector<std::shared_ptr<WsConnection>> targets;
  {
    std::lock_guard g(mu_);
    closing_ = true;
    for (const auto& [u, v] : by_user_) targets.insert(targets.end(), v.begin(), v.end());
  }
  for (const auto& c : targets) c->kick(code, reason);
}

}  // namespace parley::net
