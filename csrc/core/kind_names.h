// The model kinds by the names a configuration gives them ("kind", "clipped"), from the one list in
// kinds.h: the rule bindings/model_args.h (parse_spec) applies and _core.kind_names exposes to Python.
// Host code only.
#pragma once
#include <optional>
#include <string>

#include "core/types.h"

namespace plrnn {

struct KindName {
  Kind kind;
  const char* name;
  bool clipped;        // the clipped variant of `name`
  const char* family;  // the Family enumerator's name: "WPhi", "Dendritic", "Shallow"
  bool zero_diag_W;
};

#define PLRNN_KIND_NAME(k, name, clipped, family, zero_diag_W) KindName{Kind::k, name, clipped, #family, zero_diag_W},
inline constexpr KindName kKindNames[] = {PLRNN_KINDS(PLRNN_KIND_NAME)};
#undef PLRNN_KIND_NAME

// The kind (name, clipped) selects, or nothing for an unknown name. A name without a clipped variant
// selects its kind whatever `clipped` says (the Python API rejects that combination first).
inline std::optional<Kind> kind_from_name(const std::string& name, bool clipped) {
  std::optional<Kind> plain;
  for (const KindName& k : kKindNames) {
    if (name != k.name) continue;
    if (k.clipped == clipped) return k.kind;
    if (!k.clipped) plain = k.kind;
  }
  return plain;
}

// "standard, alrnn, ...": every name once, in the order of kinds.h.
inline std::string kind_name_list() {
  std::string out;
  for (const KindName& k : kKindNames) {
    if (k.clipped) continue;
    out += (out.empty() ? "" : ", ") + std::string(k.name);
  }
  return out;
}

}  // namespace plrnn
