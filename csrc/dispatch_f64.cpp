// Instantiates the native entry points for double (see dispatch.h).
#include "dispatch.h"

namespace plrnn {

template LossResult rollout<double>(const ModelSpec&, const Params<double>&, const ForcingSpec&, const Batch<double>&);
template LossResult loss_and_grad<double>(const ModelSpec&, const Params<double>&, const ForcingSpec&,
                                      const Batch<double>&, const Grads<double>&);
template void generate<double>(const ModelSpec&, const Params<double>&, index_t, index_t, const double*, const double*,
                           const double*, double*, double*);
template void initial_state<double>(const ModelSpec&, const Params<double>&, index_t, const double*, double*);
template SupervisedLoss supervised<double>(const ModelSpec&, const Params<double>&, const ReadoutSet<const double>&, SupLoss,
                                        const SupervisedBatch<double>&, const Grads<double>*, const ReadoutSet<double>*, double*);

template vi::LogJoint vi_log_joint<double>(const ModelSpec&, const Params<double>&, const vi::Latent<double>&,
                                         const vi::Observations<double>&, index_t, index_t, const double*, const double*,
                                         const vi::Weights&, const Grads<double>*, double*);

}  // namespace plrnn
