// The NCCL communicator on device memory (one rank under ctest; every rank of `mpirun -np N`
// with N GPUs), and its clear error in a build without it. Skips cleanly without a GPU.
#include <gtest/gtest.h>

#include <vector>

#include "core/device.h"
#include "dist/communicator.h"
#include "gpu/cuda_test.h"
#include "util.h"

namespace attend {
namespace {

class CudaNccl : public test::CudaTest {};

// NCCL on device buffers: rank r adds (r + 1) * i at element i, so the sum is n(n+1)/2 * i; the
// maximum of r is n - 1; a broadcast copies rank 0's values. Ranks take devices round robin.
TEST_F(CudaNccl, SumsMaximaAndBroadcastOnTheDevice) {
  if (!dist::built_with_nccl()) GTEST_SKIP() << "built without NCCL";
  dist::Communicator& world = dist::world();
  const int r = world.rank(), n = world.size();
  if (n > cuda_device_count()) GTEST_SKIP() << n << " ranks but " << cuda_device_count() << " GPUs";
  const int dev = r % cuda_device_count();
  const auto comm = dist::nccl_communicator(world, dev);
  EXPECT_EQ(comm->rank(), r);
  EXPECT_EQ(comm->size(), n);
  EXPECT_NE(comm->library().find("NCCL"), std::string::npos);
  const int64_t count = 3000;
  std::vector<float> f(count);
  std::vector<double> g(count);
  for (int64_t i = 0; i < count; ++i) {
    f[i] = static_cast<float>((r + 1) * i);
    g[i] = 0.5 * (r + 1) * static_cast<double>(i);
  }
  Tensor df = Tensor::from_vector<float>(f, {count}).to(Device::cuda(dev));
  Tensor dg = Tensor::from_vector<double>(g, {count}).to(Device::cuda(dev));
  const std::vector<int64_t> m = {r, -r};
  Tensor dm = Tensor::empty({2}, DType::kF64, Device::cuda(dev));  // 8-byte storage for int64
  copy_bytes(dm.raw_data(), dm.device(), m.data(), Device::cpu(), sizeof(int64_t) * m.size());
  Tensor db = Tensor::full({5}, r == 0 ? 7.0 : -1.0).to(DType::kF32).to(Device::cuda(dev));
  comm->all_reduce_sum(static_cast<float*>(df.raw_data()), count);
  comm->all_reduce_sum(static_cast<double*>(dg.raw_data()), count);
  comm->all_reduce_max(static_cast<int64_t*>(dm.raw_data()), 2);
  comm->broadcast(db.raw_data(), db.nbytes(), 0);
  comm->barrier();
  const auto sf = df.to(Device::cpu()).to_vector<float>();
  const auto sg = dg.to(Device::cpu()).to_vector<double>();
  const double ranks_sum = 0.5 * n * (n + 1);
  for (int64_t i = 0; i < count; i += 97) {
    EXPECT_EQ(sf[i], static_cast<float>(ranks_sum * static_cast<double>(i))) << i;
    EXPECT_EQ(sg[i], 0.5 * ranks_sum * static_cast<double>(i)) << i;
  }
  std::vector<int64_t> sm(2);
  copy_bytes(sm.data(), Device::cpu(), dm.raw_data(), dm.device(), sizeof(int64_t) * sm.size());
  EXPECT_EQ(sm, (std::vector<int64_t>{n - 1, 0}));
  EXPECT_EQ(db.to(Device::cpu()).to_vector<float>(), std::vector<float>(5, 7.f));
}

}  // namespace

// Without NCCL in the build, asking for the communicator names the build option.
TEST(Nccl, WithoutTheBackendIsAClearError) {
  if (dist::built_with_nccl()) GTEST_SKIP() << "this build has NCCL";
  EXPECT_TRUE(test::throws_with([] { (void)dist::nccl_communicator(dist::world(), 0); },
                                {"NCCL", "-DATTEND_CUDA=ON"}));
  EXPECT_NE(dist::nccl_library_version().find("not built"), std::string::npos);
}

}  // namespace attend
