"""Cooperative multi-agent value learning (QMIX, VDN) with sparse agent and mixing networks."""

from sb3_sparse.marl.buffers import DualEpisodeReplayBuffer, EpisodeReplayBuffer
from sb3_sparse.marl.learner import ValueDecompositionLearner
from sb3_sparse.marl.policies import MlpQMIXPolicy, MlpVDNPolicy, QMIXPolicy, VDNPolicy
from sb3_sparse.marl.qmix import QMIX, VDN
from sb3_sparse.marl.runner import EpisodeRunner

__all__ = [
    "QMIX",
    "VDN",
    "DualEpisodeReplayBuffer",
    "EpisodeReplayBuffer",
    "EpisodeRunner",
    "MlpQMIXPolicy",
    "MlpVDNPolicy",
    "QMIXPolicy",
    "VDNPolicy",
    "ValueDecompositionLearner",
]
