// File helpers (see file.h).
#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace attend::io {

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ATTEND_CHECK(fd >= 0, "{}: cannot open: {}", path, std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      ATTEND_FAIL("{}: read failed: {}", path, std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some filesystems refuse directory fds
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ATTEND_CHECK(fd >= 0, "{}: cannot create: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      ATTEND_FAIL("{}: write failed: {}", tmp, std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    ATTEND_FAIL("{}: fsync/close failed: {}", tmp, std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    ATTEND_FAIL("{}: rename to {} failed: {}", tmp, path, std::strerror(e));
  }
  fsync_dir(std::filesystem::path(path).parent_path().string());
}

namespace {

std::string parent_of(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

}  // namespace

void replace_dir_atomic(const std::string& tmp, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(tmp, dir, ec);
    ATTEND_CHECK(!ec, "{}: cannot rename {} into place: {}", dir, tmp, ec.message());
    fsync_dir(parent_of(dir));
    return;
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(parent_of(dir));
    fs::remove_all(tmp, ec);  // now the old contents
    return;
  }
  const int e = errno;
  ATTEND_CHECK(e == EINVAL || e == ENOSYS || e == ENOTSUP,
               "{}: cannot swap {} into place: {}", dir, tmp, std::strerror(e));
  const std::string old = dir + ".old.tmp";  // a name every reader skips
  fs::remove_all(old, ec);
  fs::rename(dir, old, ec);
  ATTEND_CHECK(!ec, "{}: cannot move aside to {}: {}", dir, old, ec.message());
  fs::rename(tmp, dir, ec);
  ATTEND_CHECK(!ec, "{}: cannot rename {} into place: {}", dir, tmp, ec.message());
  fsync_dir(parent_of(dir));
  fs::remove_all(old, ec);
}

void remove_dir_atomic(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  const std::string doomed = dir + ".tmp";
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  ATTEND_CHECK(!ec, "{}: cannot rename to {} for deletion: {}", dir, doomed, ec.message());
  fsync_dir(parent_of(dir));
  fs::remove_all(doomed, ec);
}

uint32_t crc32(std::string_view bytes) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < bytes.size()) {  // zlib takes uInt lengths
    const size_t n = std::min<size_t>(bytes.size() - done, 1u << 30);
    c = ::crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(c);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace attend::io
