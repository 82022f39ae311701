// IdMap / IdSet: open-addressing hash tables keyed by ids (id.h), for the
// per-task and per-object tables on the hot path (the reference counter,
// the memory store, the pending and in-flight task maps).
//
// Why not std::unordered_map: each lookup there walks a bucket's linked list
// of separately allocated nodes, re-hashing and comparing the 20-byte key of
// every node it passes; each insert is a malloc. Here the slots are one
// array of 8-byte slots (a 32-bit tag of each key's hash beside the number
// of its node), so a probe reads one cache line and looks only at the node
// whose tag matches, and nodes come from a free list of chunks. Memory per
// entry: the node plus 9-18 bytes of slots (load 44-88 %), about what
// std::unordered_map spends on its bucket and next pointers.
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
  // 8 bytes: a 32-bit tag of the key's hash and the node's number in the
  // pool (+2; 0: empty, 1: erased).
  struct Slot {
    uint32_t tag = 0;
    uint32_t idx = 0;
  };
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kTomb = 1;
  static bool Full(const Slot& s) { return s.idx > kTomb; }

  template <bool kConst>
  class Iter {
   public:
    using value_type = Entry;
    using MapPtr = std::conditional_t<kConst, const IdMap*, IdMap*>;
    using SlotPtr = std::conditional_t<kConst, const Slot*, Slot*>;
    using Ref = std::conditional_t<kConst, const Entry&, Entry&>;
    using Ptr = std::conditional_t<kConst, const Entry*, Entry*>;
    using iterator_category = std::forward_iterator_tag;
    using difference_type = std::ptrdiff_t;
    using pointer = Ptr;
    using reference = Ref;
    Iter() = default;
    Iter(MapPtr m, SlotPtr s, SlotPtr end) : m_(m), s_(s), end_(end) { Skip(); }
    operator Iter<true>() const { return Iter<true>(m_, s_, end_); }  // NOLINT: like std iterators
    Ref operator*() const { return *m_->pool_.At(s_->idx); }
    Ptr operator->() const { return m_->pool_.At(s_->idx); }
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
    MapPtr m_ = nullptr;
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
  iterator begin() { return iterator(this, slots_.data(), slots_.data() + slots_.size()); }
  iterator end() { return iterator(this, slots_.data() + slots_.size(), slots_.data() + slots_.size()); }
  const_iterator begin() const { return const_iterator(this, slots_.data(), slots_.data() + slots_.size()); }
  const_iterator end() const {
    return const_iterator(this, slots_.data() + slots_.size(), slots_.data() + slots_.size());
  }

  iterator find(const K& k) {
    Slot* s = Lookup(k);
    return s ? At(s) : end();
  }
  const_iterator find(const K& k) const {
    const Slot* s = const_cast<IdMap*>(this)->Lookup(k);
    return s ? const_iterator(this, s, slots_.data() + slots_.size()) : end();
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
      if (s.idx == kEmpty) {
        Slot* dst = tomb ? tomb : &s;
        if (tomb) tombs_--;
        dst->tag = tag;
        dst->idx = pool_.New(k, std::forward<Args>(args)...);
        size_++;
        return {At(dst), true};
      }
      if (s.idx == kTomb) {
        if (!tomb) tomb = &s;
      } else if (s.tag == tag && pool_.At(s.idx)->first == k) {
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
    iterator next(this, s + 1, slots_.data() + slots_.size());
    EraseSlot(s);
    if (size_ == 0) return end();  // the slots may have been released
    return next;
  }
  iterator erase(iterator it) { return erase(const_iterator(it)); }

  void clear() {
    for (Slot& s : slots_) {
      if (Full(s)) pool_.Delete(s.idx);
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
  // Nodes in fixed chunks with a free list of numbers: no malloc per
  // insert, and the memory of a drained table goes back when it empties.
  class Pool {
   public:
    template <typename... Args>
    uint32_t New(const K& k, Args&&... args) {
      if (free_ == kNone) AddChunk();
      uint32_t n = free_;
      Cell& c = CellOf(n);
      free_ = c.next;
      new (c.bytes) value_type(std::piecewise_construct, std::forward_as_tuple(k),
                               std::forward_as_tuple(std::forward<Args>(args)...));
      return n + 2;
    }
    void Delete(uint32_t idx) {
      uint32_t n = idx - 2;
      Cell& c = CellOf(n);
      reinterpret_cast<value_type*>(c.bytes)->~value_type();
      c.next = free_;
      free_ = n;
    }
    value_type* At(uint32_t idx) const {
      return std::launder(reinterpret_cast<value_type*>(CellOf(idx - 2).bytes));
    }
    void Release() {
      chunks_.clear();
      free_ = kNone;
    }
    void Swap(Pool& o) {
      chunks_.swap(o.chunks_);
      std::swap(free_, o.free_);
    }

   private:
    union Cell {
      uint32_t next;
      alignas(value_type) unsigned char bytes[sizeof(value_type)];
    };
    static constexpr uint32_t kChunkBits = 6;  // 64 nodes per chunk
    static constexpr uint32_t kNone = ~uint32_t{0};
    Cell& CellOf(uint32_t n) const { return chunks_[n >> kChunkBits][n & ((1u << kChunkBits) - 1)]; }
    void AddChunk() {
      uint32_t base = static_cast<uint32_t>(chunks_.size()) << kChunkBits;
      chunks_.emplace_back(new Cell[size_t{1} << kChunkBits]);
      Cell* cells = chunks_.back().get();
      for (uint32_t i = (1u << kChunkBits); i-- > 0;) {
        cells[i].next = free_;
        free_ = base + i;
      }
    }
    std::vector<std::unique_ptr<Cell[]>> chunks_;
    uint32_t free_ = kNone;
  };

  iterator At(Slot* s) { return iterator(this, s, slots_.data() + slots_.size()); }

  Slot* Lookup(const K& k) {
    if (size_ == 0) return nullptr;
    size_t h = k.Hash();
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.idx == kEmpty) return nullptr;
      if (s.idx != kTomb && s.tag == tag && pool_.At(s.idx)->first == k) return &s;
    }
  }

  void EraseSlot(Slot* s) {
    pool_.Delete(s->idx);
    s->idx = kTomb;
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
      size_t i = pool_.At(o.idx)->first.Hash() & mask;
      while (slots_[i].idx != kEmpty) i = (i + 1) & mask;
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
