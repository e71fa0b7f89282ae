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
//   5. its name: bindings/model_args.h (parse_spec) and python/plrnn_native/models.py (KINDS), with its
//      NumPy reference (reference.py) and piecewise-linear form (piecewise.py) for the tests and analysis.
// A new family (another step shape) also needs its branch in the CUDA kernels (rollout/rollout_bptt.cuh).
//
//   Standard          A*z + W relu(z) + h + C s                    (W zero diagonal)
//   ALRNN             A*z + W [z_lin; relu(z_last P)] + h + C s
//   Dendritic         A*z + W phi(z) + h + C s, phi_i = sum_b alpha_b relu(z_i - theta_ib)
//   DendriticClipped  phi_i = sum_b alpha_b (relu(z_i - theta_ib) - relu(z_i))
//   Shallow           A*z + W1 relu(W2 z + h2) + h1 + C s
//   ShallowClipped    A*z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1 + C s
#pragma once

#define PLRNN_KINDS(X) X(Standard) X(ALRNN) X(Dendritic) X(DendriticClipped) X(Shallow) X(ShallowClipped)
