// TensorFlow ops PgdStepLinf and PgdStepL2: one fused PGD step, x' from (x, x0, grad).
//
// Semantics (pixels and eps on the scale [0, 1]; the order of cleverhans.tf2):
//   x1  = clip(x + step_size * d, 0, 1)      d = sign(grad) | grad / ||grad||_2 per example
//   eta = project_eps(x1 - x0)               clip to [-eps, eps] | scale by min(1, eps / ||eta||_2)
//   x'  = clip(x0 + eta, 0, 1)
// Dimension 0 is the batch; norms are taken over the other dimensions. Arithmetic is in
// float32 for every dtype. No gradient is registered: the attack never differentiates
// through its own step (tfrobust/ops/__init__.py marks both ops not differentiable).
#define EIGEN_USE_THREADS
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/util/work_sharder.h"
#include "tfrobust/ops/cc/pgd_step_kernel.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tfrobust {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

template <typename... Args>
absl::Status InvalidArg(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

template <typename... Args>
absl::Status InternalError(const Args&... args) {
  return absl::InternalError(absl::StrCat(args...));
}

absl::Status PgdStepShape(InferenceContext* c) {
  ShapeHandle x = c->input(0);
  ShapeHandle unused;
  if (!c->WithRankAtLeast(x, 1, &x).ok()) {
    return InvalidArg("x must have a batch dimension (rank >= 1); got ",
                                   c->DebugString(c->input(0)));
  }
  if (!c->Merge(x, c->input(1), &x).ok() || !c->Merge(x, c->input(2), &x).ok()) {
    return InvalidArg("x, x0 and grad must have the same shape; got x ",
                                   c->DebugString(c->input(0)), ", x0 ",
                                   c->DebugString(c->input(1)), ", grad ",
                                   c->DebugString(c->input(2)));
  }
  if (!c->WithRank(c->input(3), 0, &unused).ok()) {
    return InvalidArg("eps must be a scalar; got shape ", c->DebugString(c->input(3)));
  }
  if (!c->WithRank(c->input(4), 0, &unused).ok()) {
    return InvalidArg("step_size must be a scalar; got shape ",
                                   c->DebugString(c->input(4)));
  }
  c->set_output(0, x);
  return absl::OkStatus();
}

template <typename T>
using Row = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using OutRow = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

// tf.clip_by_value on an Eigen array expression, NaN passing through as in TensorFlow.
template <typename E>
auto Clip(const E& e, float lo, float hi) {
  return e.template min<Eigen::PropagateNaN>(hi).template max<Eigen::PropagateNaN>(lo);
}

// The CPU step on rows [begin, end) of a [batch, row] view.
template <typename T>
void CpuRows(PgdNorm norm, const T* x, const T* x0, const T* g, T* out, int64_t begin,
             int64_t end, int64_t row, float eps, float step_size) {
  if (norm == PgdNorm::kLinf) {
    // Elementwise: the header's scalar step (the CUDA kernel's arithmetic), which g++ -O3 vectorizes.
    // Eigen's sign() and NaN-propagating min/max here ran 4x slower than TensorFlow's separate ops.
    for (int64_t i = begin * row, stop = end * row; i < stop; ++i) {
      out[i] = static_cast<T>(LinfStep(static_cast<float>(x[i]), static_cast<float>(x0[i]),
                                       static_cast<float>(g[i]), eps, step_size));
    }
    return;
  }
  // eta is kept in float (out may alias x and may be half precision); one buffer per shard, not per row.
  Eigen::ArrayXf eta(row);
  for (int64_t b = begin; b < end; ++b) {
    const int64_t o = b * row;
    const auto xf = Row<T>(x + o, row).template cast<float>();
    const auto x0f = Row<T>(x0 + o, row).template cast<float>();
    const auto gf = Row<T>(g + o, row).template cast<float>();
    OutRow<T> out_row(out + o, row);
    const float grad_norm = SafeL2Norm(gf.square().sum());
    eta = Clip(xf + step_size * (gf / grad_norm), 0.f, 1.f) - x0f;
    const float factor = L2ProjectFactor(eps, eta.square().sum());
    out_row = Clip(x0f + eta * factor, 0.f, 1.f).template cast<T>();
  }
}

template <typename Device, typename T>
struct PgdStepFunctor;

template <typename T>
struct PgdStepFunctor<Eigen::ThreadPoolDevice, T> {
  void operator()(OpKernelContext* ctx, PgdNorm norm, const T* x, const T* x0, const T* g, T* out,
                  int64_t batch, int64_t row, float eps, float step_size) {
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
    // Rough cycles per example, so that Shard splits small batches less finely.
    const int64_t cost = row * (norm == PgdNorm::kLinf ? 12 : 40);
    ::tensorflow::Shard(workers->num_threads, workers->workers, batch, cost,
                        [&](int64_t begin, int64_t end) {
                          CpuRows<T>(norm, x, x0, g, out, begin, end, row, eps, step_size);
                        });
  }
};

#if GOOGLE_CUDA
template <typename T>
constexpr PgdDtype DtypeOf();
template <>
constexpr PgdDtype DtypeOf<float>() { return PgdDtype::kFloat32; }
template <>
constexpr PgdDtype DtypeOf<Eigen::half>() { return PgdDtype::kFloat16; }
template <>
constexpr PgdDtype DtypeOf<Eigen::bfloat16>() { return PgdDtype::kBFloat16; }

template <typename T>
struct PgdStepFunctor<Eigen::GpuDevice, T> {
  void operator()(OpKernelContext* ctx, PgdNorm norm, const T* x, const T* x0, const T* g, T* out,
                  int64_t batch, int64_t row, float eps, float step_size) {
    void* stream = static_cast<void*>(ctx->eigen_device<Eigen::GpuDevice>().stream());
    const int code = LaunchPgdStep(norm, DtypeOf<T>(), x, x0, g, out, batch, row, eps, step_size,
                                   stream);
    OP_REQUIRES(ctx, code == 0,
                InternalError("PGD step CUDA kernel failed: ", PgdStepErrorString(code)));
  }
};
#endif  // GOOGLE_CUDA

template <typename Device, typename T, PgdNorm kNorm>
class PgdStepOp : public OpKernel {
 public:
  explicit PgdStepOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& x0 = ctx->input(1);
    const Tensor& grad = ctx->input(2);
    const Tensor& eps = ctx->input(3);
    const Tensor& step_size = ctx->input(4);
    OP_REQUIRES(ctx, x.dims() >= 1,
                InvalidArg("x must have a batch dimension (rank >= 1); got shape ",
                                        x.shape().DebugString()));
    OP_REQUIRES(ctx, x0.shape() == x.shape() && grad.shape() == x.shape(),
                InvalidArg("x, x0 and grad must have the same shape; got x ",
                                        x.shape().DebugString(), ", x0 ", x0.shape().DebugString(),
                                        ", grad ", grad.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(eps.shape()),
                InvalidArg("eps must be a scalar; got shape ",
                                        eps.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(step_size.shape()),
                InvalidArg("step_size must be a scalar; got shape ",
                                        step_size.shape().DebugString()));
    const float eps_value = eps.scalar<float>()();
    const float step_value = step_size.scalar<float>()();
    OP_REQUIRES(ctx, eps_value >= 0.f,  // false for NaN too
                InvalidArg("eps must be >= 0 (pixel scale [0, 1]); got ", eps_value));

    Tensor* out = nullptr;
    // x is dead after the step inside an attack loop: reuse its buffer when TF allows.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &out));
    const int64_t batch = x.dim_size(0);
    if (x.NumElements() == 0) return;
    const int64_t row = x.NumElements() / batch;
    PgdStepFunctor<Device, T>()(ctx, kNorm, x.flat<T>().data(), x0.flat<T>().data(),
                                grad.flat<T>().data(), out->flat<T>().data(), batch, row,
                                eps_value, step_value);
  }
};

}  // namespace

#define TFR_REGISTER_OP(NAME)                              \
  REGISTER_OP(NAME)                                        \
      .Input("x: T")                                       \
      .Input("x0: T")                                      \
      .Input("grad: T")                                    \
      .Input("eps: float")                                 \
      .Input("step_size: float")                           \
      .Output("adv: T")                                    \
      .Attr("T: {float, half, bfloat16} = DT_FLOAT")       \
      .SetShapeFn(PgdStepShape)

TFR_REGISTER_OP("PgdStepLinf");
TFR_REGISTER_OP("PgdStepL2");

#define TFR_REGISTER_KERNELS(DEVICE_NAME, DEVICE, T, ...)                                   \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("PgdStepLinf").Device(DEVICE_NAME).TypeConstraint<T>("T") __VA_ARGS__,           \
      PgdStepOp<DEVICE, T, PgdNorm::kLinf>);                                                \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("PgdStepL2").Device(DEVICE_NAME).TypeConstraint<T>("T") __VA_ARGS__,             \
      PgdStepOp<DEVICE, T, PgdNorm::kL2>);

TFR_REGISTER_KERNELS(::tensorflow::DEVICE_CPU, Eigen::ThreadPoolDevice, float)
TFR_REGISTER_KERNELS(::tensorflow::DEVICE_CPU, Eigen::ThreadPoolDevice, Eigen::half)
TFR_REGISTER_KERNELS(::tensorflow::DEVICE_CPU, Eigen::ThreadPoolDevice, Eigen::bfloat16)

#if GOOGLE_CUDA
// eps and step_size stay on the host: the launcher takes them as kernel arguments.
#define TFR_GPU_HOST_SCALARS .HostMemory("eps").HostMemory("step_size")
TFR_REGISTER_KERNELS(::tensorflow::DEVICE_GPU, Eigen::GpuDevice, float, TFR_GPU_HOST_SCALARS)
TFR_REGISTER_KERNELS(::tensorflow::DEVICE_GPU, Eigen::GpuDevice, Eigen::half, TFR_GPU_HOST_SCALARS)
TFR_REGISTER_KERNELS(::tensorflow::DEVICE_GPU, Eigen::GpuDevice, Eigen::bfloat16,
                     TFR_GPU_HOST_SCALARS)
#endif  // GOOGLE_CUDA

}  // namespace tfrobust
