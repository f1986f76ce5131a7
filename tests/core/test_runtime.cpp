// Allocator arena, thread pool and counter-based RNG.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>

#include "core/allocator.h"
#include "core/cpu_info.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

TEST(Arena, TensorsComeFromTheArenaAndStopGrowing) {
  Arena arena(1 << 16);
  size_t allocs_after_first_step = 0;
  for (int step = 0; step < 3; ++step) {
    {
      ArenaScope scope(&arena);
      Tensor a = Tensor::zeros({1000, 100});  // 400 kB: forces new blocks on the first step
      Tensor b = Tensor::zeros({50, 100});
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % kCpuAlignment, 0u);
      EXPECT_GE(arena.bytes_in_use(), 400000u);
      {
        HeapScope heap;
        Tensor h = Tensor::zeros({10});
        EXPECT_EQ(arena.bytes_in_use() % kCpuAlignment, 0u);
      }
    }
    arena.reset();
    EXPECT_EQ(arena.bytes_in_use(), 0u);
    EXPECT_EQ(arena.num_blocks(), 1u);
    if (step == 0) {
      allocs_after_first_step = arena.system_allocations();
    } else {
      EXPECT_EQ(arena.system_allocations(), allocs_after_first_step)
          << "arena grew at step " << step;
    }
  }
  EXPECT_GE(arena.peak_bytes(), 420000u);
}

TEST(ThreadPool, CoversTheRangeOnceAndPropagatesErrors) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, 10, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    EXPECT_THROW(pool.parallel_for(100, 1,
                                   [&](int64_t, int64_t e) {
                                     if (e == 100) throw Error("boom");  // the last chunk
                                   }),
                 Error);
    // The pool still works after an exception.
    std::atomic<int64_t> total{0};
    pool.parallel_for(10, 1, [&](int64_t b, int64_t e) { total += e - b; });
    EXPECT_EQ(total.load(), 10);
  }
}

TEST(ThreadPool, SizeIsARuntimeSetting) {
  const int before = num_threads();
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(before);
  EXPECT_EQ(num_threads(), before);
  EXPECT_THROW(set_num_threads(0), Error);
}

TEST(Rng, PhiloxIsAPureFunctionOfKeyAndCounter) {
  EXPECT_EQ(philox4x32(1, 2, 3), philox4x32(1, 2, 3));
  EXPECT_NE(philox4x32(1, 2, 3), philox4x32(1, 2, 4));
  EXPECT_NE(philox4x32(1, 2, 3), philox4x32(2, 2, 3));
  // Uniforms look uniform: mean ~ 0.5, variance ~ 1/12.
  double s = 0, s2 = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = philox_uniform(7, 0, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    s += u;
    s2 += u * u;
  }
  EXPECT_NEAR(s / n, 0.5, 0.01);
  EXPECT_NEAR(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.01);
}

TEST(Rng, DropoutMaskDoesNotDependOnThreadCount) {
  Tensor x = test::randn({4099}, 3).to(DType::kF32);
  const int before = num_threads();
  set_num_threads(1);
  const auto one = ops::dropout(x, 0.3, 11, 5).to_vector<float>();
  set_num_threads(4);
  const auto four = ops::dropout(x, 0.3, 11, 5).to_vector<float>();
  set_num_threads(before);
  EXPECT_EQ(one, four);
  int zeros = 0;
  for (float v : one) zeros += v == 0.f;
  EXPECT_NEAR(zeros / 4099.0, 0.3, 0.03);
}

TEST(CpuInfo, AgreesWithTheCompilersFeatureTestsAndNamesEveryExtension) {
  const CpuInfo& c = cpu_info();
  EXPECT_EQ(&c, &cpu_info());  // read once
#if defined(__x86_64__)
  EXPECT_EQ(c.avx2, static_cast<bool>(__builtin_cpu_supports("avx2")));
  EXPECT_EQ(c.avx512f, static_cast<bool>(__builtin_cpu_supports("avx512f")));
  EXPECT_EQ(c.avx512bw, static_cast<bool>(__builtin_cpu_supports("avx512bw")));
  EXPECT_EQ(c.avx512_vnni, static_cast<bool>(__builtin_cpu_supports("avx512vnni")));
  EXPECT_EQ(c.avx512_bf16, static_cast<bool>(__builtin_cpu_supports("avx512bf16")));
#endif
  if (c.amx_bf16 || c.amx_int8) {
    EXPECT_TRUE(c.amx_tile);
  }
  if (c.amx_permitted) {
    EXPECT_TRUE(c.amx_tile);
  }
  // Each extension is named once, on the side it belongs to.
  const std::string line = cpu_feature_line(c);
  for (const char* name :
       {"avx2", "avx512f", "avx512bw", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"}) {
    const size_t at = line.find(name);
    ASSERT_NE(at, std::string::npos) << name << " missing from '" << line << "'";
  }
  const size_t split = line.find("; not: ");
  const std::string has = line.substr(0, split);
  EXPECT_EQ(c.avx512f, has.find("avx512f") != std::string::npos) << line;
  EXPECT_EQ(c.amx_bf16 && c.amx_tile, has.find("amx_bf16") != std::string::npos) << line;
  CpuInfo none;
  EXPECT_EQ(cpu_feature_line(none),
            "none; not: avx2 avx512f avx512bw avx512_bf16 avx512_vnni "
            "amx_bf16 amx_int8");
  none.avx2 = none.avx512f = none.avx512bw = none.avx512_bf16 = none.avx512_vnni = true;
  none.amx_tile = none.amx_bf16 = none.amx_int8 = true;
  EXPECT_EQ(cpu_feature_line(none),
            "avx2 avx512f avx512bw avx512_bf16 avx512_vnni amx_bf16 amx_int8 (AMX present, but "
            "the OS refused the tile state)");
}

}  // namespace
}  // namespace attend
