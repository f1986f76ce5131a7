// The single-rank and MPI communicators (see communicator.h). MPI is compiled in with
// ATTEND_WITH_MPI (every build but the device check's, which has no MPI to link).
#include "dist/communicator.h"

#ifdef ATTEND_WITH_MPI
#include <mpi.h>
#endif

#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace attend::dist {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, int64_t) override {}
  void all_reduce_sum(double*, int64_t) override {}
  void all_reduce_sum(int64_t*, int64_t) override {}
  void all_reduce_max(int64_t*, int64_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
  std::string library() const override { return "none (one process)"; }
};

#ifdef ATTEND_WITH_MPI
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  ATTEND_FAIL("MPI: {} failed: {}", what, std::string(msg, static_cast<size_t>(len)));
}

// MPI counts are int: larger buffers go in chunks.
constexpr int64_t kChunk = int64_t{1} << 30;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    // One thread at a time calls MPI (see communicator.h). Under `attend train` the signal
    // watcher has blocked Ctrl-C and SIGTERM before this runs, so MPI's own threads inherit
    // that mask and never take those signals.
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    check_mpi(rc, "MPI_Init_thread");
    ATTEND_CHECK(provided >= MPI_THREAD_SERIALIZED,
                 "MPI: the library gives thread level {} (need MPI_THREAD_SERIALIZED)", provided);
    // Errors come back as return codes (turned into attend::Error) instead of aborting inside.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* d, int64_t n) override { reduce(d, n, MPI_FLOAT, MPI_SUM); }
  void all_reduce_sum(double* d, int64_t n) override { reduce(d, n, MPI_DOUBLE, MPI_SUM); }
  void all_reduce_sum(int64_t* d, int64_t n) override { reduce(d, n, MPI_INT64_T, MPI_SUM); }
  void all_reduce_max(int64_t* d, int64_t n) override { reduce(d, n, MPI_INT64_T, MPI_MAX); }
  void broadcast(void* data, size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (size_t off = 0; off < bytes; off += static_cast<size_t>(kChunk))
      check_mpi(MPI_Bcast(p + off, static_cast<int>(std::min<size_t>(kChunk, bytes - off)),
                          MPI_BYTE, root, MPI_COMM_WORLD),
                "MPI_Bcast");
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }
  std::string library() const override { return mpi_library_version(); }

 private:
  template <typename T>
  void reduce(T* d, int64_t n, MPI_Datatype type, MPI_Op op) {
    for (int64_t off = 0; off < n; off += kChunk)
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, d + off, static_cast<int>(std::min(kChunk, n - off)),
                              type, op, MPI_COMM_WORLD),
                "MPI_Allreduce");
  }
  int rank_ = 0, size_ = 1;
};
#endif

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

Communicator& world() {
#ifdef ATTEND_WITH_MPI
  static std::unique_ptr<Communicator> c =
      launched_by_mpi() ? std::unique_ptr<Communicator>(new MpiCommunicator)
                        : std::unique_ptr<Communicator>(new LocalCommunicator);
#else
  ATTEND_CHECK(!launched_by_mpi(),
               "started by mpirun, but this build has no MPI (the device check's build): run "
               "one process");
  static std::unique_ptr<Communicator> c(new LocalCommunicator);
#endif
  return *c;
}

#ifndef ATTEND_WITH_MPI
std::string mpi_library_version() { return "not built (the device check's build)"; }
#else
std::string mpi_library_version() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string s(v, static_cast<size_t>(len));
  const size_t comma = s.find(',');
  return comma == std::string::npos ? s : s.substr(0, comma);
}
#endif

#ifndef ATTEND_WITH_NCCL
bool built_with_nccl() { return false; }

std::string nccl_library_version() { return "not built (configure with -DATTEND_CUDA=ON)"; }

std::unique_ptr<Communicator> nccl_communicator(Communicator&, int) {
  ATTEND_FAIL("NCCL: this build has no NCCL communicator (configure with -DATTEND_CUDA=ON and "
              "the CUDA toolkit's NCCL)");
}
#endif

void broadcast_tensor(Communicator& c, Tensor& t, int root) {
  ATTEND_CHECK(t.device().is_cpu() && t.is_contiguous(),
               "broadcast_tensor: {} must be contiguous on the CPU", t.str());
  c.broadcast(t.raw_data(), t.nbytes(), root);
}

std::string broadcast_string(Communicator& c, const std::string& s, int root) {
  int64_t n = static_cast<int64_t>(s.size());
  c.broadcast(&n, sizeof(n), root);
  std::string out = c.rank() == root ? s : std::string(static_cast<size_t>(n), '\0');
  if (n > 0) c.broadcast(out.data(), static_cast<size_t>(n), root);
  return out;
}

}  // namespace attend::dist
