// Corpus reading and validation, SentencePiece tokenization, token-based batching and the
// prefetching batch stream (including exact repositioning for resume).
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/utf8.h"
#include "util.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/numbers.h"
#include "data/tokenizer.h"

namespace attend {
namespace {

using test::error_of;
std::string tmp_path(const std::string& name) { return test::tmp_path("data", name); }

std::string write(const std::string& name, const std::string& text) {
  const std::string p = tmp_path(name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

std::string write_gz(const std::string& name, const std::string& text) {
  const std::string p = tmp_path(name);
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  return p;
}

TEST(Corpus, ReadsPlainAndGzipWithCrlfAndNoFinalNewline) {
  const std::vector<std::string> want = {"a b", "", "ü c", "last"};
  EXPECT_EQ(data::read_lines(write("p.txt", "a b\r\n\nü c\nlast")), want);
  EXPECT_EQ(data::read_lines(write_gz("p.txt.gz", "a b\r\n\nü c\nlast\n")), want);
  EXPECT_NE(error_of([] { data::read_lines(tmp_path("nope.txt")); }).find("nope.txt"), std::string::npos);
}

TEST(Corpus, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("Grüße, 東京, 🙂"));
  EXPECT_FALSE(valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_EQ(repair_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
}

TEST(Corpus, ParallelErrorsNameFilesLinesAndCounts) {
  const std::string s = write("s.txt", "one\ntwo\nthree\n"), t = write("t.txt", "eins\nzwei\n");
  const std::string e = error_of([&] { data::read_parallel(s, t); });
  EXPECT_NE(e.find(s), std::string::npos) << e;
  EXPECT_NE(e.find(t), std::string::npos) << e;
  EXPECT_NE(e.find("3 lines"), std::string::npos) << e;
  EXPECT_NE(e.find("2 lines"), std::string::npos) << e;
  const std::string bad = write("bad.txt", "fine\nbroken \xC3\x28 here\nok\n");
  const std::string t3 = write("t3.txt", "a\nb\nc\n");
  const std::string e2 = error_of([&] { data::read_parallel(bad, t3); });
  EXPECT_NE(e2.find(bad + ":2"), std::string::npos) << e2;
  const auto c = data::read_parallel(bad, t3, data::BadUtf8::kSkip);
  EXPECT_EQ(c.skipped_utf8, 1);
  EXPECT_EQ(c.src, (std::vector<std::string>{"fine", "ok"}));
  const auto d = data::read_parallel(write("e.txt", "x\n \ny\n"), t3);
  EXPECT_EQ(d.skipped_empty, 1);
  EXPECT_EQ(d.tgt, (std::vector<std::string>{"a", "c"}));
}

std::vector<std::string> number_sentences(int64_t n) {
  std::vector<std::string> s;
  for (const auto& p : data::generate_numbers(3, n, 0, 99999, data::NumberLanguage::kEnglish)) {
    s.push_back(p.digits);
    s.push_back(p.words);
  }
  return s;
}

TEST(Tokenizer, TrainsEncodesDecodesAndReloads) {
  data::TokenizerOptions o;
  o.vocab_size = 120;
  o.split_digits = true;
  const data::Tokenizer tok = data::Tokenizer::train(number_sentences(2000), o);
  EXPECT_GT(tok.vocab_size(), 40);
  EXPECT_LE(tok.vocab_size(), 120);
  const std::string text = "forty-two thousand seven hundred one";
  const auto ids = tok.encode(text);
  for (int32_t id : ids) EXPECT_GT(id, data::kEosId);  // specials never appear in text
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("90210").size(), 6u);  // "▁" + one piece per digit
  const std::string p = tmp_path("t.model");
  tok.save(p);
  EXPECT_EQ(data::Tokenizer::load(p).encode(text), ids);
  EXPECT_NE(error_of([&] { data::Tokenizer::load(write("junk.model", "not a model")); }).find("junk.model"),
            std::string::npos);
}

TEST(Tokenizer, CharacterVocabularyKeepsEveryCharacterAndNewlines) {
  const std::string text = "To be, or not\nto be: \xc3\xa9t\xc3\xa9\n";  // "été": 2-byte chars
  const data::Tokenizer tok = data::Tokenizer::train_chars(text);
  EXPECT_TRUE(tok.is_char());
  // distinct characters: space , : T b e n o r t \n é  -> 12, plus 4 specials
  EXPECT_EQ(tok.vocab_size(), 16);
  EXPECT_EQ(tok.bos_id(), data::kBosId);
  const auto ids = tok.encode(text);
  EXPECT_EQ(ids.size(), 25u);  // one id per character, not per byte
  for (int32_t id : ids) EXPECT_GT(id, data::kEosId);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("\n")[0], 4);  // code-point order: newline is the smallest
  EXPECT_EQ(tok.pieces("b\xc3\xa9"), (std::vector<std::string>{"b", "\xc3\xa9"}));
  // Unknown characters map to unk; specials decode to nothing.
  const auto unk = tok.encode("toZ");
  EXPECT_EQ(unk[2], data::kUnkId);
  EXPECT_EQ(tok.decode({data::kBosId, ids[0], data::kEosId, data::kPadId}), "T");
  // The vocabulary travels as tokenizer.model bytes.
  const std::string p = tmp_path("chars.model");
  tok.save(p);
  const data::Tokenizer back = data::Tokenizer::load(p);
  EXPECT_TRUE(back.is_char());
  EXPECT_EQ(back.encode(text), ids);
  EXPECT_NE(error_of([&] { tok.encode("a\xff"); }).find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(error_of([&] { data::Tokenizer::train_chars("ok\xc3"); }).find("not valid UTF-8"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              data::Tokenizer::load(write("dup.model", "attend-char-vocab 1\nabca"));
            }).find("twice"),
            std::string::npos);
}

// BERT's masking rule on 200 sentences of 100 tokens: 15% of the real tokens chosen, of those
// 80% masked, 10% random, 10% kept (each within 4 standard deviations); BOS/EOS never chosen;
// targets are the original ids at chosen positions and pad elsewhere; a pure function of
// (seed, stream).
TEST(Batcher, MaskingFollowsBertsProportions) {
  std::vector<data::Example> ex(200);
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].layout = data::Layout::kSequence;
    ex[i].tgt.push_back(data::kBosId);
    for (int k = 0; k < 100; ++k) ex[i].tgt.push_back(5 + static_cast<int32_t>((i * 7 + k) % 90));
    ex[i].tgt.push_back(data::kEosId);
  }
  std::vector<int64_t> rows(ex.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  const data::Batch b = data::make_batch(ex, rows);
  EXPECT_EQ(b.tgt_tokens, 200 * 102);
  data::MaskRule rule;
  rule.mask_id = 4, rule.first_token = 4, rule.vocab = 95;
  const data::Batch m = data::mask_batch(b, rule, 9, 3);
  const auto orig = b.tgt_in.to_vector<int32_t>(), in = m.tgt_in.to_vector<int32_t>(),
             out = m.tgt_out.to_vector<int32_t>();
  int64_t chosen = 0, masked = 0, random = 0, kept = 0;
  for (size_t i = 0; i < orig.size(); ++i) {
    if (out[i] == data::kIgnore) {
      EXPECT_EQ(in[i], orig[i]);  // not chosen: unchanged
      continue;
    }
    ASSERT_GE(orig[i], 5) << "a special id was chosen at " << i;
    EXPECT_EQ(out[i], orig[i]);
    ++chosen;
    if (in[i] == rule.mask_id) ++masked;
    else if (in[i] == orig[i]) ++kept;
    else ++random;
    EXPECT_TRUE(in[i] >= 4 && in[i] < 95);
  }
  EXPECT_EQ(m.tgt_tokens, chosen);
  auto within = [](double got, double p, double n) {
    return std::abs(got - p * n) <= 4 * std::sqrt(p * (1 - p) * n);
  };
  EXPECT_TRUE(within(static_cast<double>(chosen), 0.15, 20000)) << chosen;
  EXPECT_TRUE(within(static_cast<double>(masked), 0.8, static_cast<double>(chosen))) << masked;
  EXPECT_TRUE(within(static_cast<double>(random), 0.1, static_cast<double>(chosen))) << random;
  // "random" excludes draws that happen to equal the original token: ~1/90 of the 10%
  EXPECT_TRUE(within(static_cast<double>(kept), 0.1 + 0.1 / 90, static_cast<double>(chosen)))
      << kept;
  EXPECT_EQ(data::mask_batch(b, rule, 9, 3).tgt_in.to_vector<int32_t>(), in);
  EXPECT_NE(data::mask_batch(b, rule, 9, 4).tgt_in.to_vector<int32_t>(), in);
  rule.mask_id = -1;
  EXPECT_NE(error_of([&] { data::mask_batch(b, rule, 9, 3); }).find("no mask token"),
            std::string::npos);
}

std::vector<data::Example> examples(int64_t n, uint64_t seed) {
  std::vector<data::Example> ex(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ls = 1 + (i * 7 + static_cast<int64_t>(seed)) % 29, lt = 1 + (i * 13) % 31;
    for (int64_t k = 0; k < ls; ++k) ex[i].src.push_back(4 + static_cast<int32_t>((i + k) % 50));
    for (int64_t k = 0; k < lt; ++k) ex[i].tgt.push_back(4 + static_cast<int32_t>((i * k) % 50));
  }
  return ex;
}

TEST(Batcher, MakeBatchPlacesBosEosAndPadding) {
  std::vector<data::Example> ex = {{{5, 6, 7}, {8, 9}}, {{10}, {11, 12, 13}}};
  const data::Batch b = data::make_batch(ex, {0, 1});
  EXPECT_EQ(b.src.to_vector<int32_t>(), (std::vector<int32_t>{5, 6, 7, 10, 0, 0}));
  EXPECT_EQ(b.tgt_in.to_vector<int32_t>(), (std::vector<int32_t>{2, 8, 9, 0, 2, 11, 12, 13}));
  EXPECT_EQ(b.tgt_out.to_vector<int32_t>(), (std::vector<int32_t>{8, 9, 3, -1, 11, 12, 13, 3}));
  EXPECT_EQ(b.src_lengths.to_vector<int32_t>(), (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(b.tgt_lengths.to_vector<int32_t>(), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(b.src_tokens, 4);
  EXPECT_EQ(b.tgt_tokens, 7);
  // A model's own frame (MarianMT's: decoding starts from pad 9, ends with 0); padding of the
  // targets is kIgnore whatever the vocabulary's pad id.
  const data::Batch m = data::make_batch(ex, {0, 1}, {9, 0});
  EXPECT_EQ(m.tgt_in.to_vector<int32_t>(), (std::vector<int32_t>{9, 8, 9, 0, 9, 11, 12, 13}));
  EXPECT_EQ(m.tgt_out.to_vector<int32_t>(), (std::vector<int32_t>{8, 9, 0, -1, 11, 12, 13, 0}));
}

TEST(Batcher, EpochPlanCoversEveryExampleOnceWithinTheTokenBudget) {
  const auto ex = examples(3000, 1);
  const int64_t budget = 600;
  const auto plan = data::epoch_plan(ex, budget, 42, 0);
  std::vector<int> seen(ex.size(), 0);
  double fill = 0;
  for (const auto& b : plan) {
    int64_t longest = 0;
    for (int64_t i : b) {
      ++seen[i];
      longest = std::max<int64_t>({longest, static_cast<int64_t>(ex[i].src.size()),
                                   static_cast<int64_t>(ex[i].tgt.size()) + 1});
    }
    EXPECT_LE(longest * static_cast<int64_t>(b.size()), budget);
    fill += static_cast<double>(longest * static_cast<int64_t>(b.size())) / budget;
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_GT(fill / static_cast<double>(plan.size()), 0.85);  // length sorting keeps padding low
  EXPECT_EQ(plan, data::epoch_plan(ex, budget, 42, 0));     // deterministic
  EXPECT_NE(plan, data::epoch_plan(ex, budget, 42, 1));     // reshuffled every epoch
  EXPECT_NE(plan, data::epoch_plan(ex, budget, 43, 0));     // depends on the seed
}

TEST(Batcher, StreamResumesExactlyAtAnyPosition) {
  const auto ex = examples(500, 2);
  std::vector<std::vector<int64_t>> full;
  std::vector<std::pair<int64_t, int64_t>> pos;
  {
    data::BatchStream s(ex, 400, 9, 0, 0, 3);
    for (int i = 0; i < 200; ++i) {  // crosses epoch boundaries
      auto it = s.next();
      full.push_back(it.batch.indices);
      pos.emplace_back(it.epoch, it.index);
    }
  }
  EXPECT_GT(pos.back().first, 0);
  for (int start : {1, 57, 150}) {
    data::BatchStream s(ex, 400, 9, pos[start].first, pos[start].second, 3);
    for (int i = start; i < 200; ++i) ASSERT_EQ(s.next().batch.indices, full[i]) << "from " << start;
  }
}

}  // namespace
}  // namespace attend
