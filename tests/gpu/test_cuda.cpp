// The CUDA backend beside the op table (tests/ops/test_op_table.cpp, which compares every op's
// kernels): device memory, copies and strided views, the caching allocator, streams, and the
// errors of bad input on the device. Skips cleanly when the build or machine has no GPU. The
// NCCL communicator's tests are in test_nccl.cpp (they need MPI, which gpu-check's build lacks).
#include <gtest/gtest.h>

#include <limits>
#include <thread>

#include "core/context.h"
#include "core/device.h"
#include "gpu/cuda_test.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

class Cuda : public test::CudaTest {};

TEST_F(Cuda, CopiesRoundTrip) {
  const Tensor h = test::randn({3, 1000}, 1).to(DType::kF32);
  const Tensor d = h.to(Device::cuda(0));
  EXPECT_TRUE(d.device().is_cuda());
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), h.to_vector<float>());
  Tensor z = Tensor::zeros({5}, DType::kF32, Device::cuda(0));
  EXPECT_EQ(z.to(Device::cpu()).to_vector<float>(), std::vector<float>(5, 0.f));
}

// Views of device tensors (the head split and merge transposes, slices) are made contiguous on
// the device, for every element size.
TEST_F(Cuda, StridedViewsBecomeContiguousOnTheDevice) {
  const Tensor h = test::randn({2, 5, 3, 7}, 11).to(DType::kF32);
  const Tensor d = h.to(Device::cuda(0));
  const Tensor ht = h.transpose(1, 2).contiguous();
  EXPECT_EQ(d.transpose(1, 2).contiguous().to(Device::cpu()).to_vector<float>(),
            ht.to_vector<float>());
  EXPECT_EQ(d.slice(3, 2, 5).contiguous().to(Device::cpu()).to_vector<float>(),
            h.slice(3, 2, 5).contiguous().to_vector<float>());
  const Tensor hd = test::randn({4, 6}, 12);  // f64: 8-byte elements
  EXPECT_EQ(
      hd.to(Device::cuda(0)).transpose(0, 1).contiguous().to(Device::cpu()).to_vector<double>(),
      hd.transpose(0, 1).contiguous().to_vector<double>());
  const Tensor hi = test::ids({1, 2, 3, 4, 5, 6}, {2, 3});  // i32
  EXPECT_EQ(
      hi.to(Device::cuda(0)).transpose(0, 1).contiguous().to(Device::cpu()).to_vector<int32_t>(),
      (std::vector<int32_t>{1, 4, 2, 5, 3, 6}));
}

TEST_F(Cuda, CachingAllocatorReusesBlocks) {
  void* first;
  {
    Tensor a = Tensor::empty({1 << 20}, DType::kF32, Device::cuda(0));
    first = a.raw_data();
  }
  Tensor b = Tensor::empty({1 << 20}, DType::kF32, Device::cuda(0));
  EXPECT_EQ(b.raw_data(), first);
}

TEST_F(Cuda, MatmulMatchesCpu) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Tensor a = test::randn(ta ? Shape{4, 67, 33} : Shape{4, 33, 67}, 2).to(DType::kF32);
      const Tensor b = test::randn(tb ? Shape{4, 45, 67} : Shape{4, 67, 45}, 3).to(DType::kF32);
      const Tensor cpu = ops::matmul(a, b, ta, tb);
      const Tensor gpu =
          ops::matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0)), ta, tb).to(Device::cpu());
      EXPECT_TRUE(test::close(gpu, cpu, 1e-5, 1e-4)) << ta << tb;
    }
  const Tensor x = test::randn({7, 64}, 4).to(DType::kF32), w = test::randn({32, 64}, 5).to(DType::kF32);
  const Tensor y = ops::linear(x.to(Device::cuda(0)), w.to(Device::cuda(0)), {});
  EXPECT_TRUE(test::close(y.to(Device::cpu()), ops::linear(x, w, {}), 1e-5, 1e-4));
}

TEST_F(Cuda, ElementwiseMatchesCpu) {
  const Tensor a = test::randn({100003}, 6).to(DType::kF32), b = test::randn({100003}, 7).to(DType::kF32);
  const Tensor da = a.to(Device::cuda(0)), db = b.to(Device::cuda(0));
  EXPECT_TRUE(test::close(ops::add(da, db).to(Device::cpu()), ops::add(a, b), 1e-6, 1e-7));
  EXPECT_TRUE(test::close(ops::relu(da).to(Device::cpu()), ops::relu(a), 0, 0));
  EXPECT_TRUE(test::close(ops::relu_backward(da, db).to(Device::cpu()), ops::relu_backward(a, b), 0, 0));
}

// Mixed precision (ProductsScope bf16): the device's products are those of the operands rounded
// to bf16 (as core/types.h rounds), summed in f32 -- the CPU's definition -- for every
// transposition, a batch and a shared right operand. The f64 product of the rounded operands
// bounds them by f32 summation error; the f32 product of the unrounded ones differs by far more.
TEST_F(Cuda, Bf16ProductsAreTheRoundedOperandsSummedInF32) {
  const int64_t M = 37, N = 29, K = 300;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const bool shared : {false, true}) {
        const Tensor a = test::randn(ta ? Shape{3, K, M} : Shape{3, M, K}, 21, 0.7).to(DType::kF32);
        const Tensor b = test::randn(shared ? (tb ? Shape{N, K} : Shape{K, N})
                                            : (tb ? Shape{3, N, K} : Shape{3, K, N}),
                                     22, 1.3)
                             .to(DType::kF32);
        Tensor got;
        {
          ProductsScope bf16(DType::kBF16);
          got = ops::matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0)), ta, tb).to(Device::cpu());
        }
        auto rounded = [](const Tensor& t) { return t.to(DType::kBF16).to(DType::kF64); };
        const Tensor want = ops::matmul(rounded(a), rounded(b), ta, tb);
        EXPECT_TRUE(test::close(got, want.to(DType::kF32), 1e-5, 1e-4)) << ta << tb << shared;
        EXPECT_FALSE(test::close(got, ops::matmul(a, b, ta, tb), 1e-5, 1e-4))
            << "the products were not rounded to bf16";
      }
}

// Work queued on a stream of the thread's context (StreamScope): products and elementwise ops
// on two streams from two threads give the CPU's results, and copies see the queued work.
TEST_F(Cuda, OpsRunOnTheContextsStream) {
  const Tensor a = test::randn({8, 96, 80}, 8).to(DType::kF32);
  const Tensor b = test::randn({8, 80, 72}, 9).to(DType::kF32);
  const Tensor want = ops::relu(ops::add(ops::matmul(a, b), ops::matmul(a, b)));
  auto run = [&](Tensor* out) {
    CudaStream stream(0);
    StreamScope on(stream.handle());
    const Tensor da = a.to(Device::cuda(0)), db = b.to(Device::cuda(0));
    const Tensor p = ops::matmul(da, db);
    *out = ops::relu(ops::add(p, ops::matmul(da, db))).to(Device::cpu());
  };
  Tensor r1, r2;
  std::thread t1(run, &r1), t2(run, &r2);
  t1.join();
  t2.join();
  EXPECT_TRUE(test::close(r1, want, 1e-5, 1e-4));
  EXPECT_TRUE(test::close(r2, want, 1e-5, 1e-4));
}

TEST_F(Cuda, MissingKernelsAndMixedDevicesAreClearErrors) {
  const Tensor d = Tensor::zeros({4, 4}, DType::kF32, Device::cuda(0));
  EXPECT_TRUE(test::throws_with([&] { ops::top_k(d, 2); }, {"top_k", "cuda:0"}));
  EXPECT_TRUE(test::throws_with([&] { ops::add(d, Tensor::zeros({4, 4})); },
                                {"add", "device mismatch", "cuda:0", "cpu"}));
}

// Index values are checked on the device and come back as the CPU's errors: an id outside the
// vocabulary, a target outside the classes; the data are left as they were.
TEST_F(Cuda, BadIdsAndTargetsAreClearErrorsOnTheDevice) {
  const Device gpu = Device::cuda(0);
  const Tensor w = test::randn({10, 8}, 1).to(DType::kF32).to(gpu);
  const Tensor ids = test::ids({1, 2, 10, 3}, {4}).to(gpu);
  EXPECT_TRUE(test::throws_with([&] { ops::embedding(ids, w); },
                                {"embedding", "id 10 at position 2", "[0, 10)"}));
  Tensor dw = Tensor::zeros({10, 8}, DType::kF32, gpu);
  const Tensor dout = Tensor::zeros({4, 8}, DType::kF32, gpu);
  EXPECT_TRUE(test::throws_with([&] { ops::embedding_backward(ids, dout, dw); },
                                {"embedding_backward", "id 10 at position 2"}));
  const Tensor logits = Tensor::zeros({3, 5}, DType::kF32, gpu);
  const Tensor targets = test::ids({0, -3, 4}, {3}).to(gpu);
  EXPECT_TRUE(test::throws_with(
      [&] {
        ops::cross_entropy(logits, targets, {0.0, -1}, ops::Reduction::kMean);
      },
      {"cross_entropy", "target -3 at position 1", "[0, 5)"}));
  Tensor x = test::randn({2, 4}, 2).to(DType::kF32);
  x.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(
      test::throws_with([&] { ops::quantize_rows(x.to(gpu)); }, {"quantize_rows", "row 1", "NaN"}));
}

}  // namespace

// Without the backend a stream cannot be made, and the error says why.
TEST(CudaStream, WithoutTheBackendIsAClearError) {
  if (built_with_cuda()) GTEST_SKIP() << "this build has the CUDA backend";
  EXPECT_TRUE(test::throws_with([] { CudaStream s(0); }, {"CudaStream", "no CUDA backend"}));
  EXPECT_EQ(current_context().cuda_stream, nullptr);
  {
    int fake = 0;
    StreamScope on(&fake);  // the scope only records the handle; CPU ops never read it
    EXPECT_EQ(current_context().cuda_stream, &fake);
    EXPECT_TRUE(test::close(ops::add(Tensor::full({3}, 1.0), Tensor::full({3}, 2.0)),
                            Tensor::full({3}, 3.0), 0, 1e-12));
  }
  EXPECT_EQ(current_context().cuda_stream, nullptr);
}
}  // namespace attend
