"""The critic that SAC and TD3 share (SB3's ``ContinuousCritic``), residual and sparse on request."""

from stable_baselines3.common.policies import ContinuousCritic

from sb3_sparse.common.networks import SparseNetworkMixin, q_network_candidates
from sb3_sparse.core.engine import Candidate


class SparseContinuousCritic(SparseNetworkMixin, ContinuousCritic):
    """SB3's :class:`~stable_baselines3.common.policies.ContinuousCritic` whose Q-networks are residual networks
    (``architecture``) and sparse (``sparse_config``). Each Q-network is one chain: its first layer is ``input``,
    its last (the Q-value) ``output``."""

    mlp_attributes = {"q_networks": True}

    def sparse_candidates(self) -> list[Candidate]:
        return q_network_candidates(self.q_networks)
