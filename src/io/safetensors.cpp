// safetensors reader/writer (see safetensors.h).
#include "io/safetensors.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/file.h"

namespace attend::io {
namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF64: return "F64";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI32: return "I32";
    case DType::kI8: return "I8";
  }
  ATTEND_FAIL("safetensors: unsupported dtype");
}

bool parse_dtype(const std::string& s, DType* t) {
  if (s == "F32") *t = DType::kF32;
  else if (s == "F64") *t = DType::kF64;
  else if (s == "BF16") *t = DType::kBF16;
  else if (s == "F16") *t = DType::kF16;
  else if (s == "I32") *t = DType::kI32;
  else if (s == "I8") *t = DType::kI8;
  else return false;
  return true;
}

}  // namespace

const Tensor* SafeTensors::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafeTensors::at(const std::string& name) const {
  const Tensor* t = find(name);
  ATTEND_CHECK(t != nullptr, "{}: no tensor named '{}'", file, name);
  return *t;
}

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              std::map<std::string, std::string> metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  size_t total = 0;
  for (const auto& [name, t] : tensors) {
    ATTEND_CHECK(t.defined() && t.device().is_cpu(), "safetensors: tensor '{}' must be a defined "
                 "CPU tensor", name);
    ATTEND_CHECK(name != "__metadata__", "safetensors: reserved tensor name '__metadata__'");
    header[name] = {{"dtype", st_dtype(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {total, total + t.nbytes()}}};
    total += t.nbytes();
  }
  // One buffer, sized once: the data first, then the header (which holds the data's checksum)
  // moved in front of it in place -- no second copy of a model-sized string.
  metadata["attend.crc32"] = "4294967295";  // the longest checksum, for the size bound
  header["__metadata__"] = metadata;
  std::string out;
  out.reserve(total + 8 + header.dump().size() + 8);
  for (const auto& [name, t] : tensors) {
    const Tensor c = t.to(Device::cpu()).contiguous();  // a device tensor is copied to the host
    out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  }
  metadata["attend.crc32"] = std::to_string(crc32(out));
  header["__metadata__"] = metadata;
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // align the data section to 8 bytes
  std::string prefix(8, '\0');
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  prefix += h;
  out.insert(0, prefix);
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      std::map<std::string, std::string> metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, std::move(metadata)));
}

SafeTensors parse_safetensors(const std::string& bytes, const std::string& file,
                              const TensorFilter& keep) {
  SafeTensors st;
  st.file = file;
  ATTEND_CHECK(bytes.size() >= 8, "{}: not a safetensors file ({} bytes, shorter than the "
               "8-byte header length)", file, bytes.size());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  ATTEND_CHECK(n <= bytes.size() - 8, "{}: header length {} exceeds the file size {} (truncated "
               "or not a safetensors file)", file, n, bytes.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(n));
  } catch (const nlohmann::json::exception& e) {
    ATTEND_FAIL("{}: header is not valid JSON: {}", file, e.what());
  }
  ATTEND_CHECK(header.is_object(), "{}: header is not a JSON object", file);
  const size_t data_begin = 8 + n, data_size = bytes.size() - data_begin;
  if (header.contains("__metadata__")) {
    const auto& m = header["__metadata__"];
    ATTEND_CHECK(m.is_object(), "{}: __metadata__ is not an object", file);
    for (const auto& [k, v] : m.items()) {
      ATTEND_CHECK(v.is_string(), "{}: __metadata__.{} is not a string", file, k);
      st.metadata[k] = v.get<std::string>();
    }
  }
  if (auto it = st.metadata.find("attend.crc32"); it != st.metadata.end()) {
    const uint32_t want = static_cast<uint32_t>(std::stoul(it->second));
    const uint32_t got = crc32(std::string_view(bytes).substr(data_begin));
    ATTEND_CHECK(want == got, "{}: checksum mismatch (stored crc32 {}, data has {}): the file is "
                 "corrupt", file, want, got);
  }
  // Tensors in data order (JSON objects are unordered; offsets give the file order).
  std::vector<std::pair<size_t, std::string>> order;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    ATTEND_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") &&
                     e.contains("data_offsets"),
                 "{}: tensor '{}' needs dtype, shape and data_offsets", file, name);
    ATTEND_CHECK(e["data_offsets"].is_array() && e["data_offsets"].size() == 2 &&
                     e["data_offsets"][0].is_number_unsigned() &&
                     e["data_offsets"][1].is_number_unsigned(),
                 "{}: tensor '{}': data_offsets must be two non-negative integers", file, name);
    order.emplace_back(e["data_offsets"][0].get<size_t>(), name);
  }
  std::sort(order.begin(), order.end());
  for (const auto& [begin_unused, name] : order) {
    if (keep && !keep(name)) continue;
    const auto& e = header[name];
    DType dt;
    ATTEND_CHECK(e["dtype"].is_string() && parse_dtype(e["dtype"].get<std::string>(), &dt),
                 "{}: tensor '{}': unsupported dtype {}", file, name, e["dtype"].dump());
    ATTEND_CHECK(e["shape"].is_array(), "{}: tensor '{}': shape is not an array", file, name);
    Shape shape;
    for (const auto& d : e["shape"]) {
      ATTEND_CHECK(d.is_number_unsigned(), "{}: tensor '{}': bad shape {}", file, name,
                   e["shape"].dump());
      shape.push_back(d.get<int64_t>());
    }
    const size_t b = e["data_offsets"][0].get<size_t>(), en = e["data_offsets"][1].get<size_t>();
    HeapScope heap;
    Tensor t = Tensor::empty(shape, dt);
    ATTEND_CHECK(b <= en && en <= data_size && en - b == t.nbytes(),
                 "{}: tensor '{}': data_offsets [{}, {}] do not fit shape {} ({} bytes) in a data "
                 "section of {} bytes", file, name, b, en, shape_str(shape), t.nbytes(), data_size);
    if (t.nbytes() > 0) std::memcpy(t.raw_data(), bytes.data() + data_begin + b, t.nbytes());
    st.tensors.emplace_back(name, std::move(t));
  }
  return st;
}

std::vector<std::string> safetensors_names(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), "{}: cannot open", path);
  unsigned char len[8] = {};
  in.read(reinterpret_cast<char*>(len), 8);
  ATTEND_CHECK(in.gcount() == 8, "{}: not a safetensors file (shorter than the 8-byte header "
               "length)", path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  ATTEND_CHECK(n <= size - 8, "{}: header length {} exceeds the file size {} (truncated or not a "
               "safetensors file)", path, n, size);
  std::string header(n, '\0');
  in.seekg(8);
  in.read(header.data(), static_cast<std::streamsize>(n));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    ATTEND_FAIL("{}: header is not valid JSON: {}", path, e.what());
  }
  ATTEND_CHECK(j.is_object(), "{}: header is not a JSON object", path);
  std::vector<std::string> names;
  for (const auto& [name, e] : j.items())
    if (name != "__metadata__") names.push_back(name);
  return names;
}

SafeTensors load_safetensors(const std::string& path, const TensorFilter& keep) {
  return parse_safetensors(read_file(path), path, keep);
}

}  // namespace attend::io
