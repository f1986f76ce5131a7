// The fixture of the tests that need a GPU: they skip, saying why, when the build has no CUDA
// backend or the machine no device.
#pragma once
#include <gtest/gtest.h>

#include "core/device.h"

namespace attend::test {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!built_with_cuda()) GTEST_SKIP() << "built without CUDA (configure with -DATTEND_CUDA=ON)";
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  }
};

}  // namespace attend::test
