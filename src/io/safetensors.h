// safetensors files: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw tensor bytes.
// attend writes a CRC-32 of the data section into the metadata ("attend.crc32") and checks it
// on reading when present; every malformed field is an error naming the file and the field.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace attend::io {

struct SafeTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  /// The tensor called `name`; throws naming `file` when it is absent.
  const Tensor& at(const std::string& name) const;
  const Tensor* find(const std::string& name) const;
  std::string file;
};

/// Serialises tensors (CPU, contiguous or not; f32/f64/bf16/f16/i32) and metadata.
std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              std::map<std::string, std::string> metadata = {});
/// Writes atomically (see file.h).
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      std::map<std::string, std::string> metadata = {});
/// Which tensors of a file to read (by name); the others are skipped unread, whatever their
/// dtype (e.g. the I64 position-id buffers of HuggingFace checkpoints). Empty: all.
using TensorFilter = std::function<bool(const std::string& name)>;
/// The tensor names of a file, from its header alone (the data is not read).
std::vector<std::string> safetensors_names(const std::string& path);
/// Parses a file; tensors are allocated on the heap.
SafeTensors load_safetensors(const std::string& path, const TensorFilter& keep = {});
SafeTensors parse_safetensors(const std::string& bytes, const std::string& name_for_errors,
                              const TensorFilter& keep = {});

}  // namespace attend::io
