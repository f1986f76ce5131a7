// safetensors round trips and corruption, YAML/CLI configuration precedence and errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/config.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "util.h"

namespace attend {
namespace {

using test::error_of;
std::string tmp_path(const std::string& name) { return test::tmp_path("io", name); }

TEST(SafeTensors, RoundTripKeepsNamesOrderShapesAndBits) {
  const Tensor a = Tensor::from_vector<float>({1.5f, -2.f, 3.25f, 1e-30f, -0.f, 7.f}, {2, 3});
  const Tensor b = Tensor::from_vector<int32_t>({1, 2, 16777217}, {3});
  const std::string path = tmp_path("rt.safetensors");
  io::save_safetensors(path, {{"z.weight", a}, {"a.ids", b}, {"t", a.transpose(0, 1)}}, {{"k", "v"}});
  const io::SafeTensors st = io::load_safetensors(path);
  ASSERT_EQ(st.tensors.size(), 3u);
  EXPECT_EQ(st.tensors[0].first, "z.weight");  // file order, not alphabetical
  EXPECT_EQ(st.at("z.weight").to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(st.at("a.ids").to_vector<int32_t>(), b.to_vector<int32_t>());
  EXPECT_EQ(st.at("t").shape(), (Shape{3, 2}));
  EXPECT_EQ(st.at("t").to_vector<float>(), a.transpose(0, 1).contiguous().to_vector<float>());
  EXPECT_EQ(st.metadata.at("k"), "v");
  EXPECT_NE(error_of([&] { (void)st.at("nope"); }).find("nope"), std::string::npos);
}

TEST(SafeTensors, CorruptionIsDetectedAndNamed) {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {4});
  std::string bytes = io::safetensors_bytes({{"w", a}});
  std::string flipped = bytes;
  flipped[flipped.size() - 2] ^= 0x10;
  EXPECT_NE(error_of([&] { io::parse_safetensors(flipped, "m.safetensors"); }).find("checksum"),
            std::string::npos);
  EXPECT_NE(error_of([&] { io::parse_safetensors(bytes.substr(0, 20), "m.safetensors"); })
                .find("m.safetensors"), std::string::npos);
  EXPECT_NE(error_of([&] { io::parse_safetensors("abc", "x"); }).find("not a safetensors"),
            std::string::npos);
  std::string bad = bytes;
  bad[8] = '[';  // header no longer a JSON object
  EXPECT_FALSE(error_of([&] { io::parse_safetensors(bad, "x"); }).empty());
  EXPECT_NE(error_of([&] { io::load_safetensors(tmp_path("missing.safetensors")); }).find("missing.safetensors"),
            std::string::npos);
}

TEST(File, AtomicWriteReplacesWholeFile) {
  const std::string p = tmp_path("atomic.txt");
  io::write_file_atomic(p, "first version, long");
  io::write_file_atomic(p, "second");
  EXPECT_EQ(io::read_file(p), "second");
  EXPECT_FALSE(io::file_exists(p + ".tmp"));
}

TEST(File, DirectoryReplacementAndRemovalLeaveNoPartialDirectory) {
  namespace fs = std::filesystem;
  const std::string dir = tmp_path("ckpt"), tmp = dir + ".new";
  fs::remove_all(dir);
  fs::create_directories(tmp);
  io::write_file_atomic(tmp + "/a", "one");
  io::replace_dir_atomic(tmp, dir);  // no old directory: a plain rename
  EXPECT_EQ(io::read_file(dir + "/a"), "one");
  EXPECT_FALSE(fs::exists(tmp));
  fs::create_directories(tmp);
  io::write_file_atomic(tmp + "/b", "two");
  io::replace_dir_atomic(tmp, dir);  // swapped with the old one, which is then deleted
  EXPECT_EQ(io::read_file(dir + "/b"), "two");
  EXPECT_FALSE(fs::exists(dir + "/a"));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(dir + ".old.tmp"));
  io::remove_dir_atomic(dir);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  io::remove_dir_atomic(dir);  // already gone: nothing to do
  EXPECT_NE(error_of([&] { io::replace_dir_atomic(tmp_path("absent"), dir); }).find("absent"),
            std::string::npos);
}

io::Config schema() {
  using io::KeyType;
  return io::Config({{"model.d_model", KeyType::kInt, "512", "width"},
                     {"model.dropout", KeyType::kFloat, "0.1", "p"},
                     {"model.norm", KeyType::kString, "post", "post or pre"},
                     {"train.shuffle", KeyType::kBool, "true", "shuffle"},
                     {"train.out", KeyType::kString, "", "dir"}});
}

TEST(Config, DefaultsThenYamlThenCommandLine) {
  const std::string y = tmp_path("c.yaml");
  std::ofstream(y) << "# a config\nmodel:\n  d_model: 256\n  norm: pre\ntrain:\n  shuffle: false\n";
  io::Config c = schema();
  EXPECT_EQ(c.get_int("model.d_model"), 512);
  c.load_yaml(y);
  EXPECT_EQ(c.get_int("model.d_model"), 256);
  EXPECT_EQ(c.get_string("model.norm"), "pre");
  EXPECT_FALSE(c.get_bool("train.shuffle"));
  EXPECT_EQ(c.origin("model.d_model"), y + ":3");
  const auto rest = c.apply_args({"--model.d_model", "128", "--model.dropout=0.3", "file.yaml", "--other"});
  EXPECT_EQ(c.get_int("model.d_model"), 128);
  EXPECT_DOUBLE_EQ(c.get_float("model.dropout"), 0.3);
  EXPECT_EQ(rest, (std::vector<std::string>{"file.yaml", "--other"}));
  EXPECT_FALSE(c.is_set("train.out"));
  // JSON round trip (checkpoints store the full config).
  io::Config d = schema();
  d.load_json(c.to_json(), "config.json");
  EXPECT_EQ(d.get_int("model.d_model"), 128);
  EXPECT_NE(c.help().find("--model.d_model <int>"), std::string::npos);
}

TEST(Config, ErrorsNameKeyAndOrigin) {
  const std::string y = tmp_path("bad.yaml");
  std::ofstream(y) << "model:\n  d_model: wide\n";
  io::Config c = schema();
  const std::string e1 = error_of([&] { c.load_yaml(y); });
  EXPECT_NE(e1.find(y + ":2"), std::string::npos) << e1;
  EXPECT_NE(e1.find("model.d_model"), std::string::npos) << e1;
  std::ofstream(y) << "modle:\n  d_model: 3\n";
  const std::string e2 = error_of([&] { c.load_yaml(y); });
  EXPECT_NE(e2.find("unknown config key 'modle.d_model'"), std::string::npos) << e2;
  EXPECT_NE(e2.find("did you mean model.d_model"), std::string::npos) << e2;
  std::ofstream(y)
      << "model:\n  d_model: 3\n? max_tokens: 1024\n  max_steps: 3\n";  // a map as a key
  const std::string e3 = error_of([&] { c.load_yaml(y); });
  EXPECT_NE(e3.find(y + ":3: a key under '(top level)' must be plain text"), std::string::npos)
      << e3;
  std::ofstream(y) << "model: [1, 2\n";
  EXPECT_NE(error_of([&] { c.load_yaml(y); }).find("invalid YAML"), std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_args({"--train.shuffle", "maybe"}); }).find("command line"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_args({"--model.dropout"}); }).find("needs a value"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.load_yaml(tmp_path("absent.yaml")); }).find("absent.yaml"),
            std::string::npos);
}

}  // namespace
}  // namespace attend
