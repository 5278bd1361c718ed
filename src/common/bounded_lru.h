#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace parley {

// A map that holds at most max_size entries: inserting into a full map first evicts the
// least recently used entry. Every lookup through get_or_insert or touch marks the entry as
// the most recently used one. Not synchronized: the owner locks around it.
//
// A reference returned by get_or_insert or touch stays valid until that entry is evicted or
// erased.
template <class K, class V, class Hash = std::hash<K>>
class BoundedLru {
 public:
  // max_size 0 is taken as 1: a map that cannot hold the entry just asked for is no use.
  explicit BoundedLru(std::size_t max_size) : max_size_(std::max<std::size_t>(1, max_size)) {}
  BoundedLru(const BoundedLru&) = delete;
  BoundedLru& operator=(const BoundedLru&) = delete;

  // The value of key, marked most recently used. When key is absent it is inserted with the
  // value make() returns (after evicting the least recently used entry if the map is full),
  // and *inserted (when given) says so.
  template <class Make>
  V& get_or_insert(const K& key, Make&& make, bool* inserted = nullptr) {
    if (V* v = touch(key)) {
      if (inserted) *inserted = false;
      return *v;
    }
    if (index_.size() >= max_size_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    order_.emplace_front(key, std::forward<Make>(make)());
    index_.emplace(key, order_.begin());
    if (inserted) *inserted = true;
    return order_.front().second;
  }

  // The value of key marked most recently used, or nullptr when absent.
  V* touch(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // The value of key without changing the order, or nullptr when absent.
  const V* peek(const K& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }

  bool erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  void clear() {
    index_.clear();
    order_.clear();
  }

  std::size_t size() const { return index_.size(); }
  std::size_t max_size() const { return max_size_; }

 private:
  using Order = std::list<std::pair<K, V>>;  // front: most recently used
  std::size_t max_size_;
  Order order_;
  std::unordered_map<K, typename Order::iterator, Hash> index_;
};

}  // namespace parley
