// CUDA backend skeleton: device memory, copies, cuBLAS matmul and elementwise kernels behind the
// same op API, compared with the CPU. Skips cleanly when the build or machine has no GPU.
#include <gtest/gtest.h>

#include <thread>

#include "core/context.h"
#include "core/device.h"
#include "ops/ops.h"
#include "util.h"

namespace attend {
namespace {

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!built_with_cuda()) GTEST_SKIP() << "built without CUDA (configure with -DATTEND_CUDA=ON)";
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  }
};

TEST_F(Cuda, CopiesRoundTrip) {
  const Tensor h = test::randn({3, 1000}, 1).to(DType::kF32);
  const Tensor d = h.to(Device::cuda(0));
  EXPECT_TRUE(d.device().is_cuda());
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), h.to_vector<float>());
  Tensor z = Tensor::zeros({5}, DType::kF32, Device::cuda(0));
  EXPECT_EQ(z.to(Device::cpu()).to_vector<float>(), std::vector<float>(5, 0.f));
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
  EXPECT_TRUE(test::throws_with([&] { ops::gelu(d); }, {"gelu", "cuda:0"}));
  EXPECT_TRUE(test::throws_with([&] { ops::add(d, Tensor::zeros({4, 4})); },
                                {"add", "device mismatch", "cuda:0", "cpu"}));
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
