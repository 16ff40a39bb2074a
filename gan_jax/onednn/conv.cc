// gan_jax's 2-D convolutions through oneDNN, as one XLA FFI handler (CPU).
//
// kind 0, forward:          (src [N, IH, IW, IC], weights [KH, KW, IC, OC]) -> dst [N, OH, OW, OC]
// kind 1, backward-data:    (diff_dst [N, OH, OW, OC], weights) -> diff_src [N, IH, IW, IC]
// kind 2, backward-weights: (src, diff_dst) -> diff_weights [KH, KW, IC, OC]
//
// float32, NHWC activations and HWIO kernels (JAX's layouts), explicit strides and padding.
// Primitives are cached per shape; one engine and stream serve every call, and a mutex runs one
// call at a time, so XLA:CPU's concurrent custom calls never start two OpenMP teams on the same
// cores. Builds against oneDNN 2.x and 3.x.
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

struct Geometry {
  memory::dims src, weights, dst, strides, pad_l, pad_r;
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A primitive, the layouts it wants (for kind 1 `src` is diff_src, for kind 2 `weights` is
// diff_weights) and its own scratchpad: oneDNN's default one belongs to the thread that created
// the primitive, and XLA calls a handler from any of its threads.
struct Plan {
  dnnl::primitive primitive;
  memory::desc src, weights, dst;
  memory scratchpad;
};

dnnl::primitive_attr Attributes() {
  dnnl::primitive_attr attributes;
  attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attributes;
}

template <typename Desc>
memory Scratchpad(const Desc& pd) {
  return memory(pd.scratchpad_desc(), Engine());
}

memory::desc Md(const memory::dims& dims, tag layout) {
  return memory::desc(dims, memory::data_type::f32, layout);
}

#if DNNL_VERSION_MAJOR >= 3
dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g, tag act, tag wei,
                                                      dnnl::prop_kind prop) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), prop, dnnl::algorithm::convolution_direct, Md(g.src, act), Md(g.weights, wei),
      Md(g.dst, act), g.strides, g.pad_l, g.pad_r, Attributes());
}
#else
dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g, tag act, tag wei,
                                                      dnnl::prop_kind prop) {
  dnnl::convolution_forward::desc d(prop, dnnl::algorithm::convolution_direct, Md(g.src, act),
                                    Md(g.weights, wei), Md(g.dst, act), g.strides, g.pad_l,
                                    g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, Attributes(), Engine());
}
#endif

// Backward-data's or backward-weights' primitive descriptor (their arguments line up).
template <typename Primitive>
typename Primitive::primitive_desc BackwardDesc(
    const Geometry& g, tag act, tag wei, const dnnl::convolution_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return typename Primitive::primitive_desc(
      Engine(), dnnl::algorithm::convolution_direct, Md(g.src, act), Md(g.weights, wei),
      Md(g.dst, act), g.strides, g.pad_l, g.pad_r, hint, Attributes());
#else
  typename Primitive::desc d(dnnl::algorithm::convolution_direct, Md(g.src, act),
                             Md(g.weights, wei), Md(g.dst, act), g.strides, g.pad_l, g.pad_r);
  return typename Primitive::primitive_desc(d, Attributes(), Engine(), hint);
#endif
}

// `any` layouts: oneDNN picks its fastest kernels (NHWC activations, blocked weights on AVX-512).
Plan MakePlan(int kind, const Geometry& g) {
  const tag act = tag::any, wei = tag::any;
  if (kind == 0) {
    auto pd = ForwardDesc(g, act, wei, dnnl::prop_kind::forward_inference);
    return {dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(), pd.dst_desc(),
            Scratchpad(pd)};
  }
  auto hint = ForwardDesc(g, act, wei, dnnl::prop_kind::forward_training);
  if (kind == 1) {
    auto pd = BackwardDesc<dnnl::convolution_backward_data>(g, act, wei, hint);
    return {dnnl::convolution_backward_data(pd), pd.diff_src_desc(), pd.weights_desc(),
            pd.diff_dst_desc(), Scratchpad(pd)};
  }
  auto pd = BackwardDesc<dnnl::convolution_backward_weights>(g, act, wei, hint);
  return {dnnl::convolution_backward_weights(pd), pd.src_desc(), pd.diff_weights_desc(),
          pd.diff_dst_desc(), Scratchpad(pd)};
}

// `user` wraps JAX's buffer; returns memory in `wanted`'s layout (a reorder into a scratch
// buffer when they differ). `memory` is a handle: copies share the buffer.
memory Into(dnnl::stream& stream, memory user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  memory converted(wanted, Engine());
  dnnl::reorder(user, converted).execute(stream, user, converted);
  return converted;
}

ffi::Error Convolve(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                    ffi::ResultBuffer<ffi::F32> out, int64_t kind, int64_t stride_h,
                    int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t pad_bottom,
                    int64_t pad_right) {
  if (kind < 0 || kind > 2) return ffi::Error::InvalidArgument("gan_jax onednn: kind not 0-2");
  auto dims = [](auto dimensions) {
    if (dimensions.size() != 4) return memory::dims();
    return memory::dims(dimensions.begin(), dimensions.end());
  };
  memory::dims da = dims(a.dimensions()), db = dims(b.dimensions());
  memory::dims dout = dims(out->dimensions());
  if (da.empty() || db.empty() || dout.empty())
    return ffi::Error::InvalidArgument("gan_jax onednn: operands must be 4-D");
  // JAX's NHWC / HWIO dims -> oneDNN's logical NCHW / OIHW dims.
  auto nchw = [](const memory::dims& d) { return memory::dims{d[0], d[3], d[1], d[2]}; };
  auto oihw = [](const memory::dims& d) { return memory::dims{d[3], d[2], d[0], d[1]}; };
  const memory::dims& src = kind == 1 ? dout : da;
  const memory::dims& wei = kind == 0 ? db : kind == 1 ? db : dout;
  const memory::dims& dst = kind == 0 ? dout : kind == 1 ? da : db;
  Geometry g{nchw(src), oihw(wei), nchw(dst), {stride_h, stride_w}, {pad_top, pad_left},
             {pad_bottom, pad_right}};

  static std::mutex mutex;
  static std::map<std::vector<int64_t>, Plan> plans;
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<int64_t> key{kind, stride_h, stride_w, pad_top, pad_left, pad_bottom,
                           pad_right};
  for (const auto* d : {&src, &wei, &dst}) key.insert(key.end(), d->begin(), d->end());
  auto found = plans.find(key);
  try {
    if (found == plans.end()) found = plans.emplace(key, MakePlan(kind, g)).first;
    const Plan& plan = found->second;
    static dnnl::stream stream(Engine());
    void* result_data = out->untyped_data();
    memory user_src(Md(g.src, tag::nhwc), Engine(), kind == 1 ? result_data : a.untyped_data());
    memory user_wei(Md(g.weights, tag::hwio), Engine(),
                    kind == 2 ? result_data : b.untyped_data());
    memory user_dst(Md(g.dst, tag::nhwc), Engine(),
                    kind == 0 ? result_data : kind == 1 ? a.untyped_data() : b.untyped_data());
    // The result is written in the primitive's layout, then reordered into JAX's buffer.
    memory* user_out = kind == 0 ? &user_dst : kind == 1 ? &user_src : &user_wei;
    const memory::desc& out_desc = kind == 0 ? plan.dst : kind == 1 ? plan.src : plan.weights;
    memory result = user_out->get_desc() == out_desc ? *user_out : memory(out_desc, Engine());
    std::unordered_map<int, memory> args;
    if (kind == 0) {
      args = {{DNNL_ARG_SRC, Into(stream, user_src, plan.src)},
              {DNNL_ARG_WEIGHTS, Into(stream, user_wei, plan.weights)},
              {DNNL_ARG_DST, result}};
    } else if (kind == 1) {
      args = {{DNNL_ARG_DIFF_DST, Into(stream, user_dst, plan.dst)},
              {DNNL_ARG_WEIGHTS, Into(stream, user_wei, plan.weights)},
              {DNNL_ARG_DIFF_SRC, result}};
    } else {
      args = {{DNNL_ARG_SRC, Into(stream, user_src, plan.src)},
              {DNNL_ARG_DIFF_DST, Into(stream, user_dst, plan.dst)},
              {DNNL_ARG_DIFF_WEIGHTS, result}};
    }
    args.insert({DNNL_ARG_SCRATCHPAD, plan.scratchpad});
    plan.primitive.execute(stream, args);
    if (result.get_data_handle() != user_out->get_data_handle())
      dnnl::reorder(result, *user_out).execute(stream, result, *user_out);
    stream.wait();
  } catch (const std::exception& e) {  // dnnl::error, std::bad_alloc: never past the FFI
    return ffi::Error::Internal(std::string("gan_jax onednn: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(GanJaxOnednnConv, Convolve,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("stride_h")
                                  .Attr<int64_t>("stride_w")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("pad_bottom")
                                  .Attr<int64_t>("pad_right"));

// Which oneDNN this library was built against and runs with, for the cache key and the log.
extern "C" int gan_jax_onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return v->major * 10000 + v->minor * 100 + v->patch;
}
