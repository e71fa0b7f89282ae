// The dispatch over model kinds and observation models shared by both backends (csrc/dispatch.h,
// cuda/rollout/engine.cu): the runtime values become compile-time constants (after mamba's
// BOOL_SWITCH), so no hot loop branches on configuration. The switch over kinds is generated from the
// one list in kinds.h. No Eigen and no CUDA here.
#pragma once
#include <type_traits>

#include "core/errors.h"
#include "core/types.h"

namespace plrnn {

// The CPU model class of kind K: specialised at the end of each csrc/models/<kind>.h.
template <typename S, Kind K> struct ModelFor;

template <typename E, E V> using Tag = std::integral_constant<E, V>;

// fn(Tag<Kind>) with the runtime model kind as a compile-time constant.
template <class Fn>
decltype(auto) dispatch_kind(Kind kind, Fn&& fn) {
  switch (kind) {
#define PLRNN_KIND_CASE(k, name, clipped, family, zero_diag_W) \
    case Kind::k: return fn(Tag<Kind, Kind::k>{});
    PLRNN_KINDS(PLRNN_KIND_CASE)
#undef PLRNN_KIND_CASE
  }
  throw_invalid("kind: unknown model kind ", static_cast<int>(kind));
}

// fn(Tag<Kind>, Tag<Obs>) for the models with an observation model (Obs::None is the supervised
// path, which dispatches on the kind only; check_call rejects it here).
template <class Fn>
decltype(auto) dispatch_kind_obs(Kind kind, Obs obs, Fn&& fn) {
  return dispatch_kind(kind, [&](auto k) -> decltype(auto) {
    switch (obs) {
      case Obs::Identity: return fn(k, Tag<Obs, Obs::Identity>{});
      case Obs::Linear: return fn(k, Tag<Obs, Obs::Linear>{});
      case Obs::None: break;
    }
    throw_invalid("obs: unknown observation model ", static_cast<int>(obs));
  });
}

}  // namespace plrnn
