// The one list of model kinds (an X-macro). The Kind enum (core/types.h) and the dispatch over kinds
// that both backends share (core/kind_dispatch.h) are generated from it.
//
// Adding a kind whose step has the shape of an existing family (W phi(z), or the shallow W1 act(W2 z)):
//   1. its entry here;
//   2. CPU: csrc/models/<kind>.h, the step beside its gradient, ending with its ModelFor specialisation
//      (included by csrc/dispatch.h);
//   3. CUDA: cuda/models/<kind>.cu, its DeviceModel<S, Kind> (forward beside gradient) and
//      PLRNN_INSTANTIATE_ROLLOUT_KIND, listed in CMakeLists.txt (PLRNN_CUDA_SOURCES);
//   4. its parameters: core/param_layout.h (param_shape, check_spec) and the family predicates of
//      core/types.h (has_W, is_dendritic, is_shallow);
//   5. its NumPy reference (reference.py) and piecewise-linear form (piecewise.py) for the tests and
//      analysis (its name, and its clipped variant if any, come from the entry here).
// A new family (another step shape) also needs its branch in the CUDA kernels (rollout/rollout_bptt.cuh).
//
//   Standard          A*z + W relu(z) + h + C s                    (W zero diagonal)
//   ALRNN             A*z + W [z_lin; relu(z_last P)] + h + C s
//   Dendritic         A*z + W phi(z) + h + C s, phi_i = sum_b alpha_b relu(z_i - theta_ib)
//   DendriticClipped  phi_i = sum_b alpha_b (relu(z_i - theta_ib) - relu(z_i))
//   Shallow           A*z + W1 relu(W2 z + h2) + h1 + C s
//   ShallowClipped    A*z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1 + C s
#pragma once

// X(enumerator, name, clipped): the name a model's configuration gives ("kind", as PLRNN(kind=...) and
// the plrnn command line take it) and whether this is the clipped variant of that name
// (core/kind_names.h turns them into the configuration's rule; Python reads them via _core.kind_names).
#define PLRNN_KINDS(X)                 \
  X(Standard, "standard", false)       \
  X(ALRNN, "alrnn", false)             \
  X(Dendritic, "dendritic", false)     \
  X(DendriticClipped, "dendritic", true) \
  X(Shallow, "shallow", false)         \
  X(ShallowClipped, "shallow", true)
