// The arithmetic of one PGD step and a plain launcher for its CUDA kernel.
//
// This header includes neither TensorFlow nor CUDA headers: the TensorFlow op
// (pgd_step_op.cc), the CUDA kernel (pgd_step_kernel.cu.cc) and the standalone
// harness (harness.cu) all include it, and TensorFlow's headers do not compile
// under nvcc 13. Pixels are on the scale [0, 1]; eps and step_size are on it too.
//
// The order of operations copies cleverhans.tf2 (fast_gradient_method, then
// clip_eta in projected_gradient_descent) so that the fused step gives the same
// numbers:
//   x1  = clip(x + step_size * d(grad), 0, 1)      d = sign(g) or g / ||g||_2
//   eta = project_eps(x1 - x0)                      clip, or scale by min(1, eps / ||eta||_2)
//   out = clip(x0 + eta, 0, 1)
#ifndef TFROBUST_OPS_CC_PGD_STEP_KERNEL_H_
#define TFROBUST_OPS_CC_PGD_STEP_KERNEL_H_

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define TFR_HD __host__ __device__ __forceinline__
#else
#define TFR_HD inline
#endif

namespace tfrobust {

// cleverhans puts this inside its square roots (utils.optimize_linear, utils.clip_eta).
constexpr float kAvoidZeroDiv = 1e-12f;

enum class PgdNorm : int { kLinf = 0, kL2 = 1 };
enum class PgdDtype : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// tf.clip_by_value: maximum(minimum(v, hi), lo), NaN passes through.
TFR_HD float ClipTo(float v, float lo, float hi) {
  v = v > hi ? hi : v;
  return v < lo ? lo : v;
}

// tf.sign: -1, 0 or 1; NaN passes through. Written without nested branches so that
// g++ -O3 vectorizes the CPU loop (the nested ?: form stayed scalar, 4x slower).
TFR_HD float SignOf(float g) {
  const float s = static_cast<float>(g > 0.f) - static_cast<float>(g < 0.f);
  return g == g ? s : g;
}

// sqrt(max(1e-12, sum of squares)), as cleverhans computes an L2 norm.
TFR_HD float SafeL2Norm(float sum_sq) {
  return sqrtf(sum_sq > kAvoidZeroDiv ? sum_sq : kAvoidZeroDiv);
}

// min(1, eps / norm): the factor that scales eta back into the L2 ball.
TFR_HD float L2ProjectFactor(float eps, float eta_sum_sq) {
  const float f = eps / SafeL2Norm(eta_sum_sq);
  return f < 1.f ? f : 1.f;
}

TFR_HD float LinfStep(float x, float x0, float g, float eps, float step_size) {
  const float x1 = ClipTo(x + step_size * SignOf(g), 0.f, 1.f);
  const float eta = ClipTo(x1 - x0, -eps, eps);
  return ClipTo(x0 + eta, 0.f, 1.f);
}

// eta before projection for the L2 step; grad_norm = SafeL2Norm(sum of g^2 over the example).
TFR_HD float L2Eta(float x, float x0, float g, float grad_norm, float step_size) {
  return ClipTo(x + step_size * (g / grad_norm), 0.f, 1.f) - x0;
}

TFR_HD float L2Finish(float x0, float eta, float factor) {
  return ClipTo(x0 + eta * factor, 0.f, 1.f);
}

// Launches the fused step on a CUDA stream (a cudaStream_t passed as void*).
// x, x0, grad and out are device arrays of batch * row_size elements of dtype;
// out may alias x. eps and step_size are host values. Returns 0 or a cudaError_t.
int LaunchPgdStep(PgdNorm norm, PgdDtype dtype, const void* x, const void* x0,
                  const void* grad, void* out, int64_t batch, int64_t row_size,
                  float eps, float step_size, void* stream);

// cudaGetErrorString for a code returned by LaunchPgdStep.
const char* PgdStepErrorString(int code);

}  // namespace tfrobust

#endif  // TFROBUST_OPS_CC_PGD_STEP_KERNEL_H_
