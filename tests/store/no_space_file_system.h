// A fault for the store's tests: a RocksDB file system that answers "no space left on device"
// (IOStatus::NoSpace, as RocksDB's own file system does on ENOSPC) to every write and file
// creation while a switch is on, and reports no free space. Everything else is the real file
// system underneath, so the store under test stays real RocksDB on a real disk.
#ifndef HUBCENSUS_TESTS_STORE_NO_SPACE_FILE_SYSTEM_H_
#define HUBCENSUS_TESTS_STORE_NO_SPACE_FILE_SYSTEM_H_

#include <atomic>
#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace hubcensus::testing {

class NoSpaceFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit NoSpaceFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  static const char* kClassName() { return "NoSpaceFileSystem"; }
  const char* Name() const override { return kClassName(); }

  void SetFull(bool full) { full_.store(full); }
  bool full() const { return full_.load(); }
  // Writes refused so far (appends and file creations).
  int refused() const { return refused_.load(); }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (full()) return Refuse(fname);
    return Wrap(target()->NewWritableFile(fname, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (full()) return Refuse(fname);
    return Wrap(target()->ReopenWritableFile(fname, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    if (full()) return Refuse(fname);
    return Wrap(target()->ReuseWritableFile(fname, old_fname, options, result, dbg), result);
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (full()) return Refuse(fname);
    return target()->NewRandomRWFile(fname, options, result, dbg);
  }
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& options,
                                 uint64_t* diskfree, rocksdb::IODebugContext* dbg) override {
    if (full()) {
      *diskfree = 0;
      return rocksdb::IOStatus::OK();
    }
    return target()->GetFreeSpace(path, options, diskfree, dbg);
  }

  rocksdb::IOStatus Refuse(const std::string& what) {
    refused_.fetch_add(1);
    return rocksdb::IOStatus::NoSpace("No space left on device", what);
  }

 private:
  // An open file whose appends fail while the file system is full (the disk filling up under a
  // file already open, as the WAL is).
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, NoSpaceFileSystem* fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->full()) return fs_->Refuse("append");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->full()) return fs_->Refuse("append");
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->full()) return fs_->Refuse("append");
      return target()->PositionedAppend(data, offset, options, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       const rocksdb::DataVerificationInfo& info,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->full()) return fs_->Refuse("append");
      return target()->PositionedAppend(data, offset, options, info, dbg);
    }

   private:
    NoSpaceFileSystem* fs_;
  };

  rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), this);
    return s;
  }

  std::atomic<bool> full_{false};
  std::atomic<int> refused_{0};
};

// The file system above as an Env for SnapshotStoreOptions::env.
struct NoSpaceEnv {
  NoSpaceEnv()
      : fs(std::make_shared<NoSpaceFileSystem>(rocksdb::FileSystem::Default())),
        env(rocksdb::NewCompositeEnv(fs)) {}
  std::shared_ptr<NoSpaceFileSystem> fs;
  std::unique_ptr<rocksdb::Env> env;
};

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_STORE_NO_SPACE_FILE_SYSTEM_H_
