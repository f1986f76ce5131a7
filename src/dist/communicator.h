// Communication between the processes of a data-parallel run, on an existing distributed
// engine: Open MPI for CPU ranks; with the CUDA backend, NCCL for ranks that each own a GPU
// (bootstrapped over MPI; compiled and linked, not yet run: no GPU has been lent).
// A process started without mpirun is a world of one rank and never touches MPI, so a single
// process behaves exactly as without this layer.
//
// Every call is collective: all ranks make the same calls in the same order. The training
// driver calls from one thread at a time (the gradient reducer's communication thread during
// backward, the driver thread otherwise), which MPI_THREAD_SERIALIZED allows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace attend::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// In-place elementwise sum over ranks.
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  virtual void all_reduce_sum(double* data, int64_t n) = 0;
  virtual void all_reduce_sum(int64_t* data, int64_t n) = 0;
  /// In-place maximum over ranks (agreement on flags: stop, signal received).
  virtual void all_reduce_max(int64_t* data, int64_t n) = 0;
  /// Copies `bytes` from rank `root` into every rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  /// Ends every rank's process (after a fatal error on one rank).
  [[noreturn]] virtual void abort(int code) = 0;
  /// "Open MPI 4.1.4" or "none (one process)".
  virtual std::string library() const = 0;
};

/// The process's communicator: MPI when started by mpirun (MPI is initialised on first use and
/// finalised at exit), else a single-rank communicator.
Communicator& world();

/// True when this process was started by an MPI launcher (mpirun / mpiexec).
bool launched_by_mpi();

/// The MPI library this build links ("Open MPI v4.1.4, ..."), whether or not it is in use.
std::string mpi_library_version();

/// True when this build has the NCCL communicator (the CUDA backend built with NCCL found).
bool built_with_nccl();
/// "NCCL 2.27.7", or a line saying why there is none.
std::string nccl_library_version();
/// A communicator over NCCL for ranks that each own the CUDA device `device`: the data
/// pointers given to it are device memory, and each call is queued on the calling thread's
/// CUDA stream (core/context.h) and returns when its result is in place. NCCL's unique id is
/// made on rank 0 and sent to every rank over `bootstrap` (the MPI world), which must outlive
/// the result and supplies rank and size. Collective over all ranks. Without NCCL in the
/// build, throws attend::Error naming the build option.
std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap, int device);

/// Copies rank `root`'s values of `t` (contiguous, CPU) into every rank's `t`.
void broadcast_tensor(Communicator& c, Tensor& t, int root);

/// Broadcasts a string from `root` (its size first, then its bytes).
std::string broadcast_string(Communicator& c, const std::string& s, int root);

}  // namespace attend::dist
