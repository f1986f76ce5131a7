// The NCCL communicator (see communicator.h): ranks that each own one CUDA device sum
// gradients with NCCL's all-reduce over NVLink / InfiniBand / sockets, as GPU data-parallel
// training does. NCCL's unique id is made on rank 0 and handed to the others over the MPI
// communicator, so mpirun starts and wires GPU jobs exactly as CPU ones. Compiled only with
// the CUDA backend and NCCL (ATTEND_WITH_NCCL).
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>

#include "core/context.h"
#include "core/cuda_check.h"
#include "core/device.h"
#include "core/error.h"
#include "dist/communicator.h"

namespace attend::dist {
namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  ATTEND_FAIL("NCCL: {} failed: {}", what, ncclGetErrorString(rc));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int device) : bootstrap_(bootstrap), device_(device) {
    ATTEND_CHECK(device >= 0 && device < cuda_device_count(),
                 "NCCL: rank {} has no CUDA device {} ({} visible)", bootstrap.rank(), device,
                 cuda_device_count());
    ncclUniqueId id{};
    if (bootstrap.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap.broadcast(&id, sizeof(id), 0);
    ATTEND_CUDA_CHECK(cudaSetDevice(device));
    check_nccl(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()),
               "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  void all_reduce_sum(float* d, int64_t n) override { reduce(d, n, ncclFloat32, ncclSum); }
  void all_reduce_sum(double* d, int64_t n) override { reduce(d, n, ncclFloat64, ncclSum); }
  void all_reduce_sum(int64_t* d, int64_t n) override { reduce(d, n, ncclInt64, ncclSum); }
  void all_reduce_max(int64_t* d, int64_t n) override { reduce(d, n, ncclInt64, ncclMax); }
  void broadcast(void* data, size_t bytes, int root) override {
    ATTEND_CUDA_CHECK(cudaSetDevice(device_));
    check_nccl(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream()), "ncclBroadcast");
    ATTEND_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  void barrier() override {
    ATTEND_CUDA_CHECK(cudaStreamSynchronize(stream()));
    bootstrap_.barrier();
  }
  [[noreturn]] void abort(int code) override {
    ncclCommAbort(comm_);
    comm_ = nullptr;
    bootstrap_.abort(code);
    std::exit(code);  // not reached: the MPI abort ends the process
  }
  std::string library() const override { return nccl_library_version(); }

 private:
  // The calling thread's stream (core/context.h): the collective is ordered after the kernels
  // that produced the data, and the call returns when the result is in place.
  static cudaStream_t stream() { return static_cast<cudaStream_t>(current_context().cuda_stream); }
  template <typename T>
  void reduce(T* d, int64_t n, ncclDataType_t type, ncclRedOp_t op) {
    ATTEND_CHECK(n >= 0, "NCCL: all-reduce of {} elements", n);
    ATTEND_CUDA_CHECK(cudaSetDevice(device_));
    check_nccl(ncclAllReduce(d, d, static_cast<size_t>(n), type, op, comm_, stream()),
               "ncclAllReduce");
    ATTEND_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  Communicator& bootstrap_;
  int device_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool built_with_nccl() { return true; }

std::string nccl_library_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch
  return format("NCCL {}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap, int device) {
  return std::make_unique<NcclCommunicator>(bootstrap, device);
}

}  // namespace attend::dist
