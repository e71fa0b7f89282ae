// The one list of model kinds (an X-macro). The Kind enum (core/types.h) and the dispatch over kinds
// that both backends share (core/kind_dispatch.h) are generated from it. Adding a kind:
// docs/architecture.md ("Adding a model kind"); in short, one entry here, one file per backend
// (csrc/models/<kind>.h with its ModelFor specialisation, cuda/models/<kind>.cu), its parameter
// shapes in core/param_layout.h and its name in the Python spec.
//
//   Standard          A*z + W relu(z) + h + C s                    (W zero diagonal)
//   ALRNN             A*z + W [z_lin; relu(z_last P)] + h + C s
//   Dendritic         A*z + W phi(z) + h + C s, phi_i = sum_b alpha_b relu(z_i - theta_ib)
//   DendriticClipped  phi_i = sum_b alpha_b (relu(z_i - theta_ib) - relu(z_i))
//   Shallow           A*z + W1 relu(W2 z + h2) + h1 + C s
//   ShallowClipped    A*z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1 + C s
#pragma once

#define PLRNN_KINDS(X) X(Standard) X(ALRNN) X(Dendritic) X(DendriticClipped) X(Shallow) X(ShallowClipped)
