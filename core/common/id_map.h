// IdMap / IdSet: open-addressing hash tables keyed by ids (id.h), for the
// per-task and per-object tables on the hot path (the reference counter,
// the memory store, the pending and in-flight task maps).
//
// Why not std::unordered_map: each lookup there walks a bucket's linked list
// of separately allocated nodes, re-hashing and comparing the 20-byte key of
// every node it passes; each insert is a malloc. Here the slots are one
// array holding a 32-bit tag of each key's hash beside a pointer to its
// node, so a probe reads one cache line and dereferences only the node
// whose tag matches, and nodes come from a free list of chunks.
//
// Guarantees (the ones the code relies on from std::unordered_map):
// - References and pointers to elements stay valid until the element is
//   erased (nodes never move; only the slot array is rebuilt).
// - Iterators stay valid across erase of other elements; erase(it) returns
//   the next one. An insert that grows the table invalidates iterators.
// Iteration order is unspecified.
//
// Thread safety: none, like the std containers; each owner guards its map.
#pragma once

#include <cstdint>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/common/id.h"

namespace rayts {

template <typename K, typename V>
class IdMap {
 public:
  using key_type = K;
  using mapped_type = V;
  using Entry = std::pair<const K, V>;
  using value_type = Entry;

 private:
  struct Slot {
    uint32_t tag = 0;
    value_type* node = nullptr;  // nullptr: empty; Tomb(): erased
  };
  static value_type* Tomb() { return reinterpret_cast<value_type*>(alignof(value_type)); }
  static bool Full(const Slot& s) { return s.node != nullptr && s.node != Tomb(); }

  template <bool kConst>
  class Iter {
   public:
    using value_type = Entry;
    using SlotPtr = std::conditional_t<kConst, const Slot*, Slot*>;
    using Ref = std::conditional_t<kConst, const Entry&, Entry&>;
    using Ptr = std::conditional_t<kConst, const Entry*, Entry*>;
    using iterator_category = std::forward_iterator_tag;
    using difference_type = std::ptrdiff_t;
    using pointer = Ptr;
    using reference = Ref;
    Iter() = default;
    Iter(SlotPtr s, SlotPtr end) : s_(s), end_(end) { Skip(); }
    operator Iter<true>() const { return Iter<true>(s_, end_); }  // NOLINT: like std iterators
    Ref operator*() const { return *s_->node; }
    Ptr operator->() const { return s_->node; }
    Iter operator++(int) {
      Iter old = *this;
      ++*this;
      return old;
    }
    Iter& operator++() {
      ++s_;
      Skip();
      return *this;
    }
    bool operator==(const Iter& o) const { return s_ == o.s_; }
    bool operator!=(const Iter& o) const { return s_ != o.s_; }

   private:
    friend class IdMap;
    void Skip() {
      while (s_ != end_ && !Full(*s_)) ++s_;
    }
    SlotPtr s_ = nullptr;
    SlotPtr end_ = nullptr;
  };

 public:
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  IdMap() = default;
  IdMap(const IdMap&) = delete;
  IdMap& operator=(const IdMap&) = delete;
  IdMap(IdMap&& o) noexcept { Swap(o); }
  IdMap& operator=(IdMap&& o) noexcept {
    if (this != &o) {
      clear();
      Swap(o);
    }
    return *this;
  }
  ~IdMap() { clear(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  iterator begin() { return iterator(slots_.data(), slots_.data() + slots_.size()); }
  iterator end() { return iterator(slots_.data() + slots_.size(), slots_.data() + slots_.size()); }
  const_iterator begin() const { return const_iterator(slots_.data(), slots_.data() + slots_.size()); }
  const_iterator end() const {
    return const_iterator(slots_.data() + slots_.size(), slots_.data() + slots_.size());
  }

  iterator find(const K& k) {
    Slot* s = Lookup(k);
    return s ? At(s) : end();
  }
  const_iterator find(const K& k) const {
    const Slot* s = const_cast<IdMap*>(this)->Lookup(k);
    return s ? const_iterator(s, slots_.data() + slots_.size()) : end();
  }
  size_t count(const K& k) const { return find(k) == end() ? 0 : 1; }
  bool contains(const K& k) const { return count(k) != 0; }

  template <typename... Args>
  std::pair<iterator, bool> try_emplace(const K& k, Args&&... args) {
    if ((size_ + tombs_ + 1) * 8 > slots_.size() * 7) Grow();
    size_t h = k.Hash();
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t mask = slots_.size() - 1;
    Slot* tomb = nullptr;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.node == nullptr) {
        Slot* dst = tomb ? tomb : &s;
        if (tomb) tombs_--;
        dst->tag = tag;
        dst->node = pool_.New(k, std::forward<Args>(args)...);
        size_++;
        return {At(dst), true};
      }
      if (s.node == Tomb()) {
        if (!tomb) tomb = &s;
      } else if (s.tag == tag && s.node->first == k) {
        return {At(&s), false};
      }
    }
  }
  template <typename... Args>
  std::pair<iterator, bool> emplace(const K& k, Args&&... args) {
    return try_emplace(k, std::forward<Args>(args)...);
  }
  std::pair<iterator, bool> insert(const value_type& v) { return try_emplace(v.first, v.second); }
  V& operator[](const K& k) { return try_emplace(k).first->second; }

  size_t erase(const K& k) {
    Slot* s = Lookup(k);
    if (!s) return 0;
    EraseSlot(s);
    return 1;
  }
  iterator erase(const_iterator it) {
    Slot* s = const_cast<Slot*>(it.s_);
    iterator next(s + 1, slots_.data() + slots_.size());
    EraseSlot(s);
    if (size_ == 0) return end();  // the slots may have been released
    return next;
  }
  iterator erase(iterator it) { return erase(const_iterator(it)); }

  void clear() {
    for (Slot& s : slots_) {
      if (Full(s)) pool_.Delete(s.node);
    }
    std::vector<Slot>().swap(slots_);
    size_ = 0;
    tombs_ = 0;
    pool_.Release();
  }
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap * 7 < n * 8) cap <<= 1;
    if (cap > slots_.size()) Rebuild(cap);
  }

 private:
  // Nodes in chunks with a free list: no malloc per insert, and the memory
  // of a drained table goes back when it empties (Release).
  class Pool {
   public:
    template <typename... Args>
    value_type* New(const K& k, Args&&... args) {
      if (!free_) AddChunk();
      Cell* c = free_;
      free_ = c->next;
      return new (c->bytes) value_type(std::piecewise_construct, std::forward_as_tuple(k),
                                       std::forward_as_tuple(std::forward<Args>(args)...));
    }
    void Delete(value_type* v) {
      v->~value_type();
      Cell* c = reinterpret_cast<Cell*>(v);
      c->next = free_;
      free_ = c;
    }
    void Release() {
      chunks_.clear();
      free_ = nullptr;
      next_chunk_ = kFirstChunk;
    }
    void Swap(Pool& o) {
      chunks_.swap(o.chunks_);
      std::swap(free_, o.free_);
      std::swap(next_chunk_, o.next_chunk_);
    }

   private:
    union Cell {
      Cell* next;
      alignas(value_type) unsigned char bytes[sizeof(value_type)];
    };
    static constexpr size_t kFirstChunk = 16;
    static constexpr size_t kMaxChunk = 4096;
    void AddChunk() {
      size_t n = next_chunk_;
      next_chunk_ = n < kMaxChunk ? n * 2 : n;
      chunks_.emplace_back(new Cell[n]);
      Cell* cells = chunks_.back().get();
      for (size_t i = n; i-- > 0;) {
        cells[i].next = free_;
        free_ = &cells[i];
      }
    }
    std::vector<std::unique_ptr<Cell[]>> chunks_;
    Cell* free_ = nullptr;
    size_t next_chunk_ = kFirstChunk;
  };

  iterator At(Slot* s) { return iterator(s, slots_.data() + slots_.size()); }

  Slot* Lookup(const K& k) {
    if (size_ == 0) return nullptr;
    size_t h = k.Hash();
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.node == nullptr) return nullptr;
      if (s.node != Tomb() && s.tag == tag && s.node->first == k) return &s;
    }
  }

  void EraseSlot(Slot* s) {
    pool_.Delete(s->node);
    s->node = Tomb();
    tombs_++;
    size_--;
    // A drained table gives its memory back (a burst of a million tasks
    // must not pin its slots and nodes for the life of the process).
    if (size_ == 0 && slots_.size() > 1024) clear();
  }

  void Grow() {
    size_t cap = slots_.empty() ? 16 : slots_.size();
    // Mostly erased slots: rebuild at the same size; else double.
    while ((size_ + 1) * 2 * 8 > cap * 7) cap <<= 1;
    Rebuild(cap);
  }

  void Rebuild(size_t cap) {
    std::vector<Slot> old(cap);
    old.swap(slots_);
    tombs_ = 0;
    size_t mask = cap - 1;
    for (Slot& o : old) {
      if (!Full(o)) continue;
      size_t i = o.node->first.Hash() & mask;
      while (slots_[i].node != nullptr) i = (i + 1) & mask;
      slots_[i] = o;
    }
  }

  void Swap(IdMap& o) {
    slots_.swap(o.slots_);
    std::swap(size_, o.size_);
    std::swap(tombs_, o.tombs_);
    pool_.Swap(o.pool_);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  size_t tombs_ = 0;
  Pool pool_;
};

// A set of ids: an IdMap with no value; iterators give the pair, so `*it`
// is `it->first` (the code that iterates sets uses the key only).
template <typename K>
class IdSet {
  struct Empty {};
  using Map = IdMap<K, Empty>;

 public:
  std::pair<typename Map::iterator, bool> insert(const K& k) { return map_.try_emplace(k); }
  size_t erase(const K& k) { return map_.erase(k); }
  size_t count(const K& k) const { return map_.count(k); }
  bool contains(const K& k) const { return map_.contains(k); }
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  void clear() { map_.clear(); }
  template <typename F>
  void ForEach(F&& f) const {
    for (auto& kv : map_) f(kv.first);
  }

 private:
  Map map_;
};

}  // namespace rayts
