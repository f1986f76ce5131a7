// The CUDA kernels' launch shapes (kernels/cuda/shapes.h), tested on the CPU: they are plain
// C++, and the kernels use exactly these functions. A wrong partition would drop or repeat
// rows of a deterministic reduction; a wrong row width would break block_sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/shapes.h"

namespace attend::cuda {
namespace {

TEST(CudaShapes, BlocksCoverEveryElementWithinTheGridLimit) {
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{255}, int64_t{256}, int64_t{257},
                    int64_t{1} << 20, int64_t{1} << 40}) {
    const int b = blocks_for(n);
    EXPECT_GE(b, 1) << n;
    EXPECT_LE(b, kMaxBlocks) << n;
    // Without the cap, one thread per element; with it, the grid-stride loop covers the rest.
    if (n <= kMaxBlocks * kThreads) {
      EXPECT_GE(int64_t{b} * kThreads, n) << n;
    }
  }
  EXPECT_EQ(blocks_for(257), 2);
  EXPECT_EQ(blocks_for(1000, 100), 10);
}

TEST(CudaShapes, RowBlocksAreWholeWarps) {
  for (int64_t cols : {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{32}, int64_t{33}, int64_t{512},
                       int64_t{1000}, int64_t{1024}, int64_t{1025}, int64_t{58101}}) {
    const int t = row_threads(cols);
    EXPECT_EQ(t % 32, 0) << cols;
    EXPECT_GE(t, 32) << cols;
    EXPECT_LE(t, 1024) << cols;
    if (cols <= 1024) {
      EXPECT_GE(t, cols) << cols;  // one value per thread for short rows
    }
  }
  EXPECT_EQ(row_threads(33), 64);
  EXPECT_EQ(row_threads(58101), 1024);
}

TEST(CudaShapes, PartitionCoversEachItemOnceInOrder) {
  for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{255}, int64_t{256}, int64_t{257}, int64_t{1000},
                    int64_t{70001}, int64_t{1} << 22})
    for (int64_t max_parts : {int64_t{1}, int64_t{7}, kReduceParts}) {
      const Partition p = partition(n, max_parts);
      ASSERT_GE(p.parts, 1);
      ASSERT_LE(p.parts, max_parts);
      int64_t next = 0;
      for (int64_t k = 0; k < p.parts; ++k) {
        EXPECT_EQ(p.begin(k), next) << n << " " << max_parts << " part " << k;
        EXPECT_GT(p.end(k, n), p.begin(k)) << "empty part " << k << " of " << n;
        next = p.end(k, n);
      }
      EXPECT_EQ(next, n) << n << " " << max_parts;
    }
  EXPECT_EQ(partition(0, kReduceParts).parts, 1);  // one (empty) part: sums write zeros
  EXPECT_EQ(partition(0, kReduceParts).end(0, 0), 0);
}

// The span of a strided-batched operand is one past the last element a product reads, for
// shared (stride 0), packed and padded layouts.
TEST(CudaShapes, OperandSpanEndsAtTheLastElementRead) {
  for (int64_t rows : {1, 3, 7})
    for (int64_t cols : {1, 5})
      for (int64_t pad : {0, 2})
        for (int64_t batch : {1, 4})
          for (int64_t stride_kind : {0, 1, 2}) {
            const int64_t ld = cols + pad;
            const int64_t stride = stride_kind == 0 ? 0 : rows * ld + (stride_kind == 2 ? 9 : 0);
            int64_t last = -1;
            for (int64_t b = 0; b < batch; ++b)
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) last = std::max(last, b * stride + r * ld + c);
            EXPECT_EQ(operand_span(rows, cols, ld, stride, batch), last + 1)
                << rows << " " << cols << " " << ld << " " << stride << " " << batch;
          }
  EXPECT_EQ(operand_span(0, 5, 5, 0, 3), 0);
}

// A sum over the parts in order, as the kernels do it (sum_squares, layer norm's dgamma), equals
// the sum in element order for integers: nothing dropped or counted twice.
TEST(CudaShapes, PartitionedSumIsTheWholeSum) {
  const int64_t n = 100003;
  std::vector<int64_t> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = (i * 7919) % 1009 - 500;
  const Partition p = partition(n, kReduceParts);
  int64_t parts_sum = 0, whole = 0;
  for (int64_t k = 0; k < p.parts; ++k)
    for (int64_t i = p.begin(k); i < p.end(k, n); ++i) parts_sum += x[i];
  for (int64_t v : x) whole += v;
  EXPECT_EQ(parts_sum, whole);
}

}  // namespace
}  // namespace attend::cuda
