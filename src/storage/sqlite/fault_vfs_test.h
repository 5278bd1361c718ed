// Test only: a SQLite VFS ("faulty") that wraps the default one and fails xWrite, xSync or
// xRead of chosen files with a chosen SQLite code on demand, to reproduce disk full, I/O
// errors and read-only files without a real disk doing it.
#pragma once
#include <sqlite3.h>

#include <atomic>
#include <cstring>

namespace faultvfs {

enum Target : int { kMainDb = 1, kWal = 2, kOther = 4, kAll = 7 };

struct Control {
  std::atomic<int> write_rc{0};  // nonzero: xWrite of a targeted file fails with this code
  std::atomic<int> sync_rc{0};   // nonzero: xSync of a targeted file fails with this code
  std::atomic<int> read_rc{0};   // nonzero: xRead of a targeted file fails with this code
  std::atomic<int> target{kAll};
  std::atomic<int> writes_failed{0}, syncs_failed{0}, reads_failed{0};
  std::atomic<int> writes{0}, syncs{0};  // calls that reached the real file
  void clear() {
    write_rc = 0;
    sync_rc = 0;
    read_rc = 0;
    target = kAll;
  }
};

inline Control& control() {
  static Control c;
  return c;
}

struct File {
  sqlite3_file base;
  sqlite3_file* real;  // lives right after this struct
  int kind;
};

inline sqlite3_vfs* real_vfs() {
  static sqlite3_vfs* v = sqlite3_vfs_find(nullptr);
  return v;
}

inline sqlite3_file* R(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }
inline bool targeted(sqlite3_file* f) {
  return (reinterpret_cast<File*>(f)->kind & control().target.load()) != 0;
}

inline int x_close(sqlite3_file* f) {
  int rc = R(f)->pMethods ? R(f)->pMethods->xClose(R(f)) : SQLITE_OK;
  f->pMethods = nullptr;
  return rc;
}
inline int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (int rc = control().read_rc.load(); rc && targeted(f)) {
    ++control().reads_failed;
    return rc;
  }
  return R(f)->pMethods->xRead(R(f), buf, n, off);
}
inline int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = control().write_rc.load(); rc && targeted(f)) {
    ++control().writes_failed;
    return rc;
  }
  ++control().writes;
  return R(f)->pMethods->xWrite(R(f), buf, n, off);
}
inline int x_truncate(sqlite3_file* f, sqlite3_int64 size) { return R(f)->pMethods->xTruncate(R(f), size); }
inline int x_sync(sqlite3_file* f, int flags) {
  if (int rc = control().sync_rc.load(); rc && targeted(f)) {
    ++control().syncs_failed;
    return rc;
  }
  ++control().syncs;
  return R(f)->pMethods->xSync(R(f), flags);
}
inline int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return R(f)->pMethods->xFileSize(R(f), size); }
inline int x_lock(sqlite3_file* f, int l) { return R(f)->pMethods->xLock(R(f), l); }
inline int x_unlock(sqlite3_file* f, int l) { return R(f)->pMethods->xUnlock(R(f), l); }
inline int x_check_reserved(sqlite3_file* f, int* out) { return R(f)->pMethods->xCheckReservedLock(R(f), out); }
inline int x_file_control(sqlite3_file* f, int op, void* arg) { return R(f)->pMethods->xFileControl(R(f), op, arg); }
inline int x_sector_size(sqlite3_file* f) { return R(f)->pMethods->xSectorSize(R(f)); }
inline int x_device_chars(sqlite3_file* f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); }
inline int x_shm_map(sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
  return R(f)->pMethods->xShmMap(R(f), pg, sz, ext, p);
}
inline int x_shm_lock(sqlite3_file* f, int off, int n, int flags) { return R(f)->pMethods->xShmLock(R(f), off, n, flags); }
inline void x_shm_barrier(sqlite3_file* f) { R(f)->pMethods->xShmBarrier(R(f)); }
inline int x_shm_unmap(sqlite3_file* f, int del) { return R(f)->pMethods->xShmUnmap(R(f), del); }
inline int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) { return R(f)->pMethods->xFetch(R(f), off, n, p); }
inline int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return R(f)->pMethods->xUnfetch(R(f), off, p); }

inline const sqlite3_io_methods* methods() {
  static const sqlite3_io_methods m = {3,
                                       x_close,
                                       x_read,
                                       x_write,
                                       x_truncate,
                                       x_sync,
                                       x_file_size,
                                       x_lock,
                                       x_unlock,
                                       x_check_reserved,
                                       x_file_control,
                                       x_sector_size,
                                       x_device_chars,
                                       x_shm_map,
                                       x_shm_lock,
                                       x_shm_barrier,
                                       x_shm_unmap,
                                       x_fetch,
                                       x_unfetch};
  return &m;
}

inline int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
  auto* w = reinterpret_cast<File*>(f);
  w->real = reinterpret_cast<sqlite3_file*>(w + 1);
  std::memset(w->real, 0, static_cast<std::size_t>(real_vfs()->szOsFile));
  w->base.pMethods = nullptr;
  int rc = real_vfs()->xOpen(real_vfs(), name, w->real, flags, out);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods) w->real->pMethods->xClose(w->real);
    return rc;
  }
  w->kind = (flags & SQLITE_OPEN_MAIN_DB) ? kMainDb : (flags & SQLITE_OPEN_WAL) ? kWal : kOther;
  w->base.pMethods = methods();
  return rc;
}
inline int x_delete(sqlite3_vfs*, const char* n, int sync) { return real_vfs()->xDelete(real_vfs(), n, sync); }
inline int x_access(sqlite3_vfs*, const char* n, int flags, int* out) {
  return real_vfs()->xAccess(real_vfs(), n, flags, out);
}
inline int x_full_pathname(sqlite3_vfs*, const char* n, int size, char* out) {
  return real_vfs()->xFullPathname(real_vfs(), n, size, out);
}
inline int x_randomness(sqlite3_vfs*, int n, char* out) { return real_vfs()->xRandomness(real_vfs(), n, out); }
inline int x_sleep(sqlite3_vfs*, int us) { return real_vfs()->xSleep(real_vfs(), us); }
inline int x_current_time(sqlite3_vfs*, double* t) { return real_vfs()->xCurrentTime(real_vfs(), t); }
inline int x_last_error(sqlite3_vfs*, int n, char* out) { return real_vfs()->xGetLastError(real_vfs(), n, out); }
inline int x_current_time64(sqlite3_vfs*, sqlite3_int64* t) {
  return real_vfs()->xCurrentTimeInt64(real_vfs(), t);
}

// Registers "faulty" (once; not as the default).
inline const char* install() {
  static sqlite3_vfs vfs = [] {  // registered below, once it has its final address
    sqlite3_vfs v{};
    sqlite3_vfs* r = real_vfs();
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(sizeof(File)) + r->szOsFile;
    v.mxPathname = r->mxPathname;
    v.zName = "faulty";
    v.xOpen = x_open;
    v.xDelete = x_delete;
    v.xAccess = x_access;
    v.xFullPathname = x_full_pathname;
    v.xDlOpen = r->xDlOpen;
    v.xDlError = r->xDlError;
    v.xDlSym = r->xDlSym;
    v.xDlClose = r->xDlClose;
    v.xRandomness = x_randomness;
    v.xSleep = x_sleep;
    v.xCurrentTime = x_current_time;
    v.xGetLastError = x_last_error;
    v.xCurrentTimeInt64 = x_current_time64;
    return v;
  }();
  static const bool registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
  (void)registered;
  return "faulty";
}

}  // namespace faultvfs
