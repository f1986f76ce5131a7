// Whole-file I/O with errors that name the path, and atomic replacement: write a temp file in
// the same directory, fsync it, rename it over the target, fsync the directory. A crash leaves
// either the old file or the new one, never a torn file.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace attend::io {

/// The whole file as bytes; throws attend::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);
/// Atomically replaces `path` with `bytes` (temp file + fsync + rename + directory fsync).
void write_file_atomic(const std::string& path, std::string_view bytes);
/// fsyncs a directory (after renames inside it).
void fsync_dir(const std::string& dir);
/// Puts the complete directory `tmp` in the place of `dir` so that a crash at any moment leaves
/// `dir` whole: the old one or the new one (renameat2 RENAME_EXCHANGE swaps them in one step;
/// on filesystems without it, the old one is renamed aside first, so `dir` can be briefly
/// absent but never partial). The old contents are then deleted.
void replace_dir_atomic(const std::string& tmp, const std::string& dir);
/// Deletes a directory tree so that a crash never leaves it half-deleted under its own name:
/// it is renamed to "<dir>.tmp" (a name every reader skips) and removed from there.
void remove_dir_atomic(const std::string& dir);
/// CRC-32 (zlib polynomial) of bytes, for checkpoint checksums.
uint32_t crc32(std::string_view bytes);
bool file_exists(const std::string& path);

}  // namespace attend::io
