// Standalone check of the PGD step CUDA kernel, without TensorFlow: launches it on
// known inputs and compares with a plain CPU reference written from cleverhans'
// formulas (not from pgd_step_kernel.h). Prints one PASS/FAIL line per case and
// exits 0 only if every case passes. With --bench it also times the kernel
// (BENCH lines: microseconds per step, effective bandwidth).
//
//   nvcc -std=c++17 -O2 -I. -x cu tfrobust/ops/cc/harness.cu \
//        tfrobust/ops/cc/pgd_step_kernel.cu.cc -o pgd_step_harness && ./pgd_step_harness
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tfrobust/ops/cc/pgd_step_kernel.h"

namespace {

using tfrobust::PgdDtype;
using tfrobust::PgdNorm;

uint64_t rng_state = 0x9E3779B97F4A7C15ull;
float Uniform() {  // [0, 1)
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((rng_state >> 40) & 0xFFFFFF) / 16777216.f;
}

float Clip(float v, float lo, float hi) { return std::max(lo, std::min(v, hi)); }

// cleverhans: fast_gradient_method, then clip_eta, then clip to [0, 1].
void Reference(PgdNorm norm, const std::vector<float>& x, const std::vector<float>& x0,
               const std::vector<float>& g, std::vector<float>* out, int64_t batch, int64_t row,
               float eps, float step) {
  std::vector<float> eta(row);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t o = b * row;
    if (norm == PgdNorm::kLinf) {
      for (int64_t i = 0; i < row; ++i) {
        const float s = g[o + i] > 0 ? 1.f : (g[o + i] < 0 ? -1.f : 0.f);
        const float x1 = Clip(x[o + i] + step * s, 0.f, 1.f);
        (*out)[o + i] = Clip(x0[o + i] + Clip(x1 - x0[o + i], -eps, eps), 0.f, 1.f);
      }
      continue;
    }
    double gsq = 0;
    for (int64_t i = 0; i < row; ++i) gsq += double(g[o + i]) * g[o + i];
    const float gnorm = std::sqrt(std::max(1e-12f, float(gsq)));
    double esq = 0;
    for (int64_t i = 0; i < row; ++i) {
      eta[i] = Clip(x[o + i] + step * (g[o + i] / gnorm), 0.f, 1.f) - x0[o + i];
      esq += double(eta[i]) * eta[i];
    }
    const float factor = std::min(1.f, eps / std::sqrt(std::max(1e-12f, float(esq))));
    for (int64_t i = 0; i < row; ++i) (*out)[o + i] = Clip(x0[o + i] + eta[i] * factor, 0.f, 1.f);
  }
}

template <typename T>
T Store(float v);
template <>
float Store<float>(float v) { return v; }
template <>
__half Store<__half>(float v) { return __float2half_rn(v); }
template <>
__nv_bfloat16 Store<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
float Load(float v) { return v; }
float Load(__half v) { return __half2float(v); }
float Load(__nv_bfloat16 v) { return __bfloat162float(v); }

struct Case {
  const char* name;
  PgdNorm norm;
  int64_t batch, row;
  float eps, step;
  bool in_place;  // out aliases x, as when TensorFlow forwards the input buffer
};

// Runs one case in dtype T; the inputs are rounded to T first so that the reference
// sees exactly what the kernel sees.
template <typename T>
bool Run(const Case& c, PgdDtype dtype, const char* dtype_name, float tol) {
  const int64_t n = c.batch * c.row;
  std::vector<float> x(n), x0(n), g(n), want(n), got(n);
  for (int64_t i = 0; i < n; ++i) {
    // Every 7th pixel starts at 0 or 1 so that the [0, 1] clip is exercised.
    x0[i] = i % 7 == 0 ? float(i % 2) : Uniform();
    x[i] = Clip(x0[i] + (Uniform() - 0.5f) * 2.f * c.eps, 0.f, 1.f);
    g[i] = (Uniform() - 0.5f) + (Uniform() < 0.5f ? 1e-3f : -1e-3f);  // never zero
  }
  std::vector<T> xt(n), x0t(n), gt(n), ot(n);
  for (int64_t i = 0; i < n; ++i) {
    xt[i] = Store<T>(x[i]), x0t[i] = Store<T>(x0[i]), gt[i] = Store<T>(g[i]);
    x[i] = Load(xt[i]), x0[i] = Load(x0t[i]), g[i] = Load(gt[i]);
  }
  Reference(c.norm, x, x0, g, &want, c.batch, c.row, c.eps, c.step);

  T *dx, *dx0, *dg, *dout;
  const size_t bytes = n * sizeof(T);
  cudaMalloc(&dx, bytes), cudaMalloc(&dx0, bytes), cudaMalloc(&dg, bytes), cudaMalloc(&dout, bytes);
  cudaMemcpy(dx, xt.data(), bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(dx0, x0t.data(), bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(dg, gt.data(), bytes, cudaMemcpyHostToDevice);
  T* target = c.in_place ? dx : dout;
  int err = tfrobust::LaunchPgdStep(c.norm, dtype, dx, dx0, dg, target, c.batch, c.row, c.eps,
                                    c.step, nullptr);
  if (err == 0) err = static_cast<int>(cudaDeviceSynchronize());
  if (err == 0) err = static_cast<int>(cudaMemcpy(ot.data(), target, bytes, cudaMemcpyDeviceToHost));
  cudaFree(dx), cudaFree(dx0), cudaFree(dg), cudaFree(dout);
  if (err != 0) {
    std::printf("FAIL %-28s %-8s CUDA error: %s\n", c.name, dtype_name,
                tfrobust::PgdStepErrorString(err));
    return false;
  }
  double max_err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double wanted = double(Load(Store<T>(want[i])));
    max_err = std::max(max_err, std::fabs(double(Load(ot[i])) - wanted));
  }
  const bool ok = max_err <= tol;
  std::printf("%s %-28s %-8s max |kernel - reference| = %.3g (tolerance %.3g)\n",
              ok ? "PASS" : "FAIL", c.name, dtype_name, max_err, tol);
  return ok;
}

// Times the kernel on device buffers (no host transfer): microseconds per step and the
// effective bandwidth for its minimal traffic (read x, x0, grad; write out).
template <typename T>
void Bench(PgdNorm norm, PgdDtype dtype, const char* dtype_name, int64_t batch, int64_t row) {
  const int64_t n = batch * row;
  std::vector<T> host(n);
  for (int64_t i = 0; i < n; ++i) host[i] = Store<T>(Uniform());
  T *dx, *dx0, *dg;
  const size_t bytes = n * sizeof(T);
  cudaMalloc(&dx, bytes), cudaMalloc(&dx0, bytes), cudaMalloc(&dg, bytes);
  cudaMemcpy(dx, host.data(), bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(dx0, host.data(), bytes, cudaMemcpyHostToDevice);
  for (int64_t i = 0; i < n; ++i) host[i] = Store<T>(Uniform() - 0.5f);
  cudaMemcpy(dg, host.data(), bytes, cudaMemcpyHostToDevice);
  const int iters = 200;
  cudaEvent_t start, stop;
  cudaEventCreate(&start), cudaEventCreate(&stop);
  for (int i = 0; i < 10; ++i) {
    tfrobust::LaunchPgdStep(norm, dtype, dx, dx0, dg, dx, batch, row, 0.1f, 0.01f, nullptr);
  }
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) {
    tfrobust::LaunchPgdStep(norm, dtype, dx, dx0, dg, dx, batch, row, 0.1f, 0.01f, nullptr);
  }
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  const double us = 1e3 * ms / iters;
  std::printf("BENCH %-4s %-8s batch %6lld row %5lld  %8.2f us/step  %7.1f GB/s\n",
              norm == PgdNorm::kLinf ? "linf" : "l2", dtype_name, static_cast<long long>(batch),
              static_cast<long long>(row), us, 4.0 * bytes / (us * 1e3));
  cudaEventDestroy(start), cudaEventDestroy(stop);
  cudaFree(dx), cudaFree(dx0), cudaFree(dg);
}

}  // namespace

int main(int argc, char** argv) {
  const bool bench = argc > 1 && std::string(argv[1]) == "--bench";
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("FAIL no CUDA device: the kernel compiled but cannot be checked here\n");
    return 2;
  }
  const Case cases[] = {
      {"linf digits 128x8x8x1", PgdNorm::kLinf, 128, 64, 0.1f, 0.01f, false},
      {"linf cifar 1000x32x32x3", PgdNorm::kLinf, 1000, 3072, 8.f / 255, 2.f / 255, false},
      {"linf eps=0", PgdNorm::kLinf, 64, 784, 0.f, 0.01f, false},
      {"linf in place", PgdNorm::kLinf, 64, 784, 0.3f, 0.05f, true},
      {"l2 digits 128x8x8x1", PgdNorm::kL2, 128, 64, 1.f, 0.25f, false},
      {"l2 mnist 1000x28x28x1", PgdNorm::kL2, 1000, 784, 2.f, 0.5f, false},
      {"l2 cifar 128x32x32x3", PgdNorm::kL2, 128, 3072, 0.5f, 0.1f, false},
      {"l2 eps=0", PgdNorm::kL2, 64, 784, 0.f, 0.1f, false},
      {"l2 big step (projects)", PgdNorm::kL2, 64, 784, 0.5f, 5.f, false},
      {"l2 in place", PgdNorm::kL2, 64, 3072, 0.5f, 0.1f, true},
      {"l2 batch > grid (70000x4)", PgdNorm::kL2, 70000, 4, 0.1f, 0.05f, false},
  };
  bool ok = true;
  for (const Case& c : cases) {
    ok &= Run<float>(c, PgdDtype::kFloat32, "float32", 2e-6f);
    ok &= Run<__half>(c, PgdDtype::kFloat16, "float16", 1e-3f);
    ok &= Run<__nv_bfloat16>(c, PgdDtype::kBFloat16, "bfloat16", 8e-3f);
  }
  std::printf(ok ? "PASS all cases\n" : "FAIL some cases\n");
  if (bench) {
    const int64_t sizes[][2] = {{128, 64}, {1024, 784}, {128, 3072}, {1024, 3072}};
    for (const auto& size : sizes) {
      for (PgdNorm norm : {PgdNorm::kLinf, PgdNorm::kL2}) {
        Bench<float>(norm, PgdDtype::kFloat32, "float32", size[0], size[1]);
        Bench<__half>(norm, PgdDtype::kFloat16, "float16", size[0], size[1]);
      }
    }
  }
  return ok ? 0 : 1;
}
