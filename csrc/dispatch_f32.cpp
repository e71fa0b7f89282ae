// Instantiates the native entry points for float (see dispatch.h).
#include "dispatch.h"

namespace plrnn {

template LossResult rollout<float>(const ModelSpec&, const Params<float>&, const ForcingSpec&, const Batch<float>&);
template LossResult loss_and_grad<float>(const ModelSpec&, const Params<float>&, const ForcingSpec&,
                                      const Batch<float>&, const Grads<float>&);
template void generate<float>(const ModelSpec&, const Params<float>&, index_t, index_t, const float*, const float*,
                           const float*, float*, float*);
template void initial_state<float>(const ModelSpec&, const Params<float>&, index_t, const float*, float*);
template SupervisedLoss supervised<float>(const ModelSpec&, const Params<float>&, const ReadoutSet<const float>&, SupLoss,
                                        const SupervisedBatch<float>&, const Grads<float>*, const ReadoutSet<float>*, float*);

template vi::LogJoint vi_log_joint<float>(const ModelSpec&, const Params<float>&, const vi::Latent<float>&,
                                         const vi::Observations<float>&, index_t, index_t, const float*, const float*,
                                         const vi::Weights&, const Grads<float>*, float*);

}  // namespace plrnn
