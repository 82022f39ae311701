// StoreClient: where the GCS tables keep their records (Ray's
// gcs/store_client): a key-value store of tables, each a map from key to
// bytes. InMemoryStoreClient is the store of this release; a Redis-backed
// one (GCS fault tolerance) implements the same interface.
//
// Role: GcsTables writes every node, job and KV record through it, so a
// persistent store can rebuild the tables after a GCS restart.
// Thread safety: implementations are called on the GCS's one io thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/common/status.h"

namespace rayts::gcs {

class StoreClient {
 public:
  virtual ~StoreClient() = default;
  virtual Status Put(const std::string& table, const std::string& key, std::string value) = 0;
  virtual StatusOr<std::string> Get(const std::string& table, const std::string& key) const = 0;
  virtual bool Delete(const std::string& table, const std::string& key) = 0;
  // Every (key, value) of a table, in key order.
  virtual std::vector<std::pair<std::string, std::string>> GetAll(const std::string& table) const = 0;
};

class InMemoryStoreClient : public StoreClient {
 public:
  Status Put(const std::string& table, const std::string& key, std::string value) override {
    tables_[table][key] = std::move(value);
    return Status::OK();
  }
  StatusOr<std::string> Get(const std::string& table, const std::string& key) const override {
    auto t = tables_.find(table);
    if (t == tables_.end()) return Status::NotFound("no key " + key);
    auto it = t->second.find(key);
    if (it == t->second.end()) return Status::NotFound("no key " + key);
    return it->second;
  }
  bool Delete(const std::string& table, const std::string& key) override {
    auto t = tables_.find(table);
    return t != tables_.end() && t->second.erase(key) > 0;
  }
  std::vector<std::pair<std::string, std::string>> GetAll(const std::string& table) const override {
    std::vector<std::pair<std::string, std::string>> out;
    auto t = tables_.find(table);
    if (t != tables_.end()) out.assign(t->second.begin(), t->second.end());
    return out;
  }

 private:
  std::map<std::string, std::map<std::string, std::string>> tables_;
};

}  // namespace rayts::gcs
