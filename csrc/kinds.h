// The one list of model kinds (an X-macro). The Kind enum (core/types.h) and the dispatch over kinds
// that both backends share (core/kind_dispatch.h) are generated from it.
//
// Adding a kind whose step has the shape of an existing family (W phi(z), or the shallow W1 act(W2 z)):
//   1. its entry here (its family sets its parameters, core/param_layout.h, and the kernels' path);
//   2. CPU: csrc/models/<kind>.h, the step beside its gradient, ending with its ModelFor specialisation
//      (included by csrc/dispatch.h);
//   3. CUDA: cuda/models/<kind>.cu, its DeviceModel<S, Kind> (forward beside gradient) and
//      PLRNN_INSTANTIATE_ROLLOUT_KIND, listed in CMakeLists.txt (PLRNN_CUDA_SOURCES);
//   4. Python: its NumPy reference (reference.py), its piecewise-linear form and Jacobian (piecewise.py)
//      and its variant in the tests' VARIANTS (tests/_common.py). Its name, clipped variant, family and
//      W constraint come from the entry here (_core.kinds()).
// A new family (another step shape) is more (docs/architecture.md): its branch in the CPU skeleton and the
// CUDA kernels (rollout/rollout_bptt.cuh, rollout/engine.cu) and its parameters (core/param_layout.h).
//
//   Standard          A*z + W relu(z) + h + C s                    (W zero diagonal)
//   ALRNN             A*z + W [z_lin; relu(z_last P)] + h + C s
//   Dendritic         A*z + W phi(z) + h + C s, phi_i = sum_b alpha_b relu(z_i - theta_ib)
//   DendriticClipped  phi_i = sum_b alpha_b (relu(z_i - theta_ib) - relu(z_i))
//   Shallow           A*z + W1 relu(W2 z + h2) + h1 + C s
//   ShallowClipped    A*z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1 + C s
#pragma once

// X(enumerator, name, clipped, family, zero_diag_W):
//   name         the name a model's configuration gives ("kind", as PLRNN(kind=...) and the plrnn command
//                line take it); clipped: whether this is the clipped variant of that name
//                (core/kind_names.h turns them into the configuration's rule);
//   family       the shape of the step, which sets the parameters and the kernels' path (core/types.h):
//                WPhi (A, W, h), Dendritic (WPhi with the bases alpha, theta), Shallow (A, W1, W2, h1, h2);
//   zero_diag_W  W has a zero diagonal (a model constraint: its gradient there is zero, an assigned W must
//                have one).
// Python reads the table through _core.kinds().
#define PLRNN_KINDS(X)                                       \
  X(Standard, "standard", false, WPhi, true)                 \
  X(ALRNN, "alrnn", false, WPhi, false)                      \
  X(Dendritic, "dendritic", false, Dendritic, true)          \
  X(DendriticClipped, "dendritic", true, Dendritic, true)    \
  X(Shallow, "shallow", false, Shallow, false)               \
  X(ShallowClipped, "shallow", true, Shallow, false)
