// CUDA kernels for the fused PGD step. Free of TensorFlow headers on purpose:
// the op registers them from pgd_step_op.cc under GOOGLE_CUDA, and harness.cu
// launches them without TensorFlow. The arithmetic lives in pgd_step_kernel.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "tfrobust/ops/cc/pgd_step_kernel.h"

namespace tfrobust {
namespace {

constexpr int kBlock = 256;  // threads per block; a multiple of the warp size
constexpr int64_t kMaxBlocks = 65535;

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Sum of v over the block; every thread gets the total. Called by all threads.
__device__ float BlockSum(float v) {
  __shared__ float warp_sums[kBlock / 32];
  __shared__ float total;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < kBlock / 32 ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const float result = total;
  __syncthreads();  // the next call may overwrite warp_sums and total
  return result;
}

template <typename T>
__global__ void LinfKernel(const T* x, const T* x0, const T* g, T* out, int64_t n, float eps,
                           float step_size) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = FromFloat<T>(LinfStep(ToFloat(x[i]), ToFloat(x0[i]), ToFloat(g[i]), eps, step_size));
  }
}

// One block per example (grid-strided over the batch): three passes over the row,
// for ||g||, for ||eta|| and for the output. Each thread touches the same indices
// in every pass, so out may alias x.
template <typename T>
__global__ void L2Kernel(const T* x, const T* x0, const T* g, T* out, int64_t batch,
                         int64_t row, float eps, float step_size) {
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const int64_t begin = b * row;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < row; i += kBlock) {
      const float gi = ToFloat(g[begin + i]);
      s += gi * gi;
    }
    const float grad_norm = SafeL2Norm(BlockSum(s));
    s = 0.f;
    for (int64_t i = threadIdx.x; i < row; i += kBlock) {
      const int64_t j = begin + i;
      const float eta = L2Eta(ToFloat(x[j]), ToFloat(x0[j]), ToFloat(g[j]), grad_norm, step_size);
      s += eta * eta;
    }
    const float factor = L2ProjectFactor(eps, BlockSum(s));
    for (int64_t i = threadIdx.x; i < row; i += kBlock) {
      const int64_t j = begin + i;
      const float x0j = ToFloat(x0[j]);
      const float eta = L2Eta(ToFloat(x[j]), x0j, ToFloat(g[j]), grad_norm, step_size);
      out[j] = FromFloat<T>(L2Finish(x0j, eta, factor));
    }
  }
}

template <typename T>
int Launch(PgdNorm norm, const void* x, const void* x0, const void* grad, void* out,
           int64_t batch, int64_t row, float eps, float step_size, cudaStream_t stream) {
  const T* xt = static_cast<const T*>(x);
  const T* x0t = static_cast<const T*>(x0);
  const T* gt = static_cast<const T*>(grad);
  T* ot = static_cast<T*>(out);
  if (norm == PgdNorm::kLinf) {
    const int64_t n = batch * row;
    int64_t blocks = (n + kBlock - 1) / kBlock;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    LinfKernel<T><<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(xt, x0t, gt, ot, n, eps,
                                                                        step_size);
  } else {
    const int64_t blocks = batch < kMaxBlocks ? batch : kMaxBlocks;
    L2Kernel<T><<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(xt, x0t, gt, ot, batch, row,
                                                                      eps, step_size);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchPgdStep(PgdNorm norm, PgdDtype dtype, const void* x, const void* x0, const void* grad,
                  void* out, int64_t batch, int64_t row_size, float eps, float step_size,
                  void* stream) {
  if (batch <= 0 || row_size <= 0) return 0;  // nothing to do; a 0-block launch is an error
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case PgdDtype::kFloat32:
      return Launch<float>(norm, x, x0, grad, out, batch, row_size, eps, step_size, s);
    case PgdDtype::kFloat16:
      return Launch<__half>(norm, x, x0, grad, out, batch, row_size, eps, step_size, s);
    case PgdDtype::kBFloat16:
      return Launch<__nv_bfloat16>(norm, x, x0, grad, out, batch, row_size, eps, step_size, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

const char* PgdStepErrorString(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace tfrobust
