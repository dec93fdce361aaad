"""Policies of the value-decomposition learners: a parameter-shared agent network and a mixing network.

Each policy holds the online networks, their target copies and one optimizer (EPyMARL trains agent
and mixer together). The agent network and the mixer (with its hypernetworks) are the engine's
modules ``agent`` and ``mixer``; their masks are made when the policy is built from its ``dst_config``,
so ``policy.save`` / ``Policy.load`` and ``load_state_dict`` rebuild the same sparse structure, and the
target copies (made by ``deepcopy``) keep the masks.
"""

import copy
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import ConstantSchedule
from torch import nn

from sb3_sparse.common.networks import chain_candidates, linear_layers
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate, sparsify_module
from sb3_sparse.core.optim import check_optimizer, prefer_fused
from sb3_sparse.core.regimes import get_regime


class AgentNetwork(nn.Module):
    """EPyMARL's agent: ``Linear -> ReLU -> GRUCell`` (or ``Linear -> ReLU``) ``-> Linear`` to one Q-value per action.

    :param input_dim: size of an agent's input (observation, then one-hot id and last action if used)
    :param hidden_dim: width of the hidden layers and of the recurrent state
    :param n_actions: number of actions
    :param use_rnn: a GRU cell in the middle (the agent remembers the episode), else a linear layer
    """

    def __init__(self, input_dim: int, hidden_dim: int, n_actions: int, use_rnn: bool = True):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.use_rnn = use_rnn
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.rnn: nn.Module = nn.GRUCell(hidden_dim, hidden_dim) if use_rnn else nn.Linear(hidden_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, n_actions)

    def initial_state(self, batch: int, device: th.device | str = "cpu") -> th.Tensor:
        return th.zeros(batch, self.hidden_dim, device=device)

    def forward(self, inputs: th.Tensor, hidden: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Q-values ``[batch, n_actions]`` and the next recurrent state (``hidden`` itself without a GRU)."""
        x = th.relu(self.fc1(inputs))
        if self.use_rnn:
            hidden = self.rnn(x, hidden)
            x = hidden
        else:
            x = th.relu(self.rnn(x))
        return self.fc2(x), hidden

    def sparse_candidates(self) -> list[Candidate]:
        """``fc1`` is the input layer, the GRU's (or linear layer's) weights hidden, ``fc2`` the output."""
        hidden: list[Candidate] = [(self.rnn, name, "hidden", 1) for name in ("weight_ih", "weight_hh") if self.use_rnn]
        if not self.use_rnn:
            hidden = [(self.rnn, "weight", "hidden", 1)]
        return [(self.fc1, "weight", "input", 0), *hidden, (self.fc2, "weight", "output", 2)]


class VDNMixer(nn.Module):
    """VDN (Sunehag et al., 2018): the team value is the sum of the agents' values."""

    def forward(self, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        """``agent_qs [..., n_agents]`` -> ``[..., 1]``."""
        return agent_qs.sum(dim=-1, keepdim=True)

    def sparse_candidates(self) -> list[Candidate]:
        return []


def _hypernetwork(state_dim: int, output_dim: int, layers: int, embed: int) -> nn.Sequential:
    if layers == 1:
        return nn.Sequential(nn.Linear(state_dim, output_dim))
    return nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, output_dim))


class QMixer(nn.Module):
    """QMIX (Rashid et al., 2018): a monotonic mixing network whose weights come from hypernetworks of the state.

    ``Q_tot = w2 . elu(W1 q + b1) + V(s)`` with ``W1 = |hyper_w1(s)|`` and ``w2 = |hyper_w2(s)|`` (non-negative,
    so ``dQ_tot / dq_a >= 0``), ``b1 = hyper_b1(s)`` and ``V(s)`` a small network.

    :param n_agents: number of agents
    :param state_dim: size of the global state
    :param embed_dim: width of the mixing layer (EPyMARL's ``mixing_embed_dim``)
    :param hypernet_layers: 1 or 2 layers in the weight hypernetworks
    :param hypernet_embed: hidden width of two-layer hypernetworks
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_layers: int = 2, hypernet_embed: int = 64):
        super().__init__()
        if hypernet_layers not in (1, 2):
            raise ValueError(f"hypernet_layers={hypernet_layers!r} is not valid; choose 1 or 2")
        self.n_agents = n_agents
        self.embed_dim = embed_dim
        self.hyper_w1 = _hypernetwork(state_dim, embed_dim * n_agents, hypernet_layers, hypernet_embed)
        self.hyper_w2 = _hypernetwork(state_dim, embed_dim, hypernet_layers, hypernet_embed)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.value = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        """``agent_qs [..., n_agents]`` and ``states [..., state_dim]`` -> ``[..., 1]``."""
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)
        s = states.reshape(qs.shape[0], -1)
        w1 = th.abs(self.hyper_w1(s)).view(-1, self.n_agents, self.embed_dim)
        hidden = nn.functional.elu(th.bmm(qs, w1) + self.hyper_b1(s).view(-1, 1, self.embed_dim))
        w2 = th.abs(self.hyper_w2(s)).view(-1, self.embed_dim, 1)
        q_tot = th.bmm(hidden, w2) + self.value(s).view(-1, 1, 1)
        return q_tot.view(*lead, 1)

    def sparse_candidates(self) -> list[Candidate]:
        """Each hypernetwork (and the state-value network) is a chain: first layer ``input``, last ``output``."""
        candidates: list[Candidate] = []
        for network in (self.hyper_w1, self.hyper_w2, self.value):
            layers = linear_layers(network)
            candidates += (
                chain_candidates(layers[:-1], layers[-1:]) if len(layers) > 1 else [(layers[0], "weight", "input", 0)]
            )
        return [*candidates, (self.hyper_b1, "weight", "input", 0)]


class QMIXPolicy(SparsePolicyMixin, BaseModel):
    """Agent network (shared by all agents), QMIX mixer, their target networks and the optimizer.

    :param observation_space: one agent's observation space (a flat ``Box``)
    :param action_space: one agent's action space (``Discrete``)
    :param lr_schedule: learning rate schedule
    :param n_agents: number of agents
    :param state_dim: size of the global state the mixer reads
    :param hidden_dim: width of the agent network (EPyMARL: 64)
    :param use_rnn: a GRU agent (``True``) or an MLP agent
    :param obs_agent_id: append each agent's one-hot id to its observation (EPyMARL: ``True``)
    :param obs_last_action: append each agent's previous action, one-hot (EPyMARL's QMIX: ``False``)
    :param mixing_embed_dim: width of QMIX's mixing layer (EPyMARL: 32)
    :param hypernet_layers: layers of QMIX's weight hypernetworks (EPyMARL: 2)
    :param hypernet_embed: hidden width of the hypernetworks (EPyMARL: 64)
    :param optimizer_class: the optimizer (Adam, as EPyMARL)
    :param optimizer_kwargs: its keyword arguments, besides the learning rate
    :param dst_config: the DST settings (flat ones plus ``"modules"``), as the algorithm takes them
    """

    sparse_modules: ClassVar[dict[str, ModuleSpec]] = {
        "agent": ModuleSpec("agent", "agent_target", "optimizer"),
        "mixer": ModuleSpec("mixer", "mixer_target", "optimizer"),
    }
    inference_module: ClassVar[str] = "agent"
    module_copies: ClassVar[dict[str, str]] = {"agent": "n_agents"}
    flops_exclude: ClassVar[tuple[str, ...]] = ()
    #: whether agents are recurrent unless ``use_rnn`` says otherwise
    default_use_rnn: ClassVar[bool] = True

    optimizer: th.optim.Optimizer

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_agents: int,
        state_dim: int,
        hidden_dim: int = 64,
        use_rnn: bool | None = None,
        obs_agent_id: bool = True,
        obs_last_action: bool = False,
        mixing_embed_dim: int = 32,
        hypernet_layers: int = 2,
        hypernet_embed: int = 64,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dst_config: dict[str, Any] | None = None,
    ):
        super().__init__(observation_space, action_space, optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs)
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs Discrete actions per agent, got {action_space}")
        for name, value in (("n_agents", n_agents), ("state_dim", state_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} is not valid; it must be a positive integer")
        self.n_agents = int(n_agents)
        self.state_dim = int(state_dim)
        self.n_actions = int(action_space.n)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.hidden_dim = hidden_dim
        self.use_rnn = self.default_use_rnn if use_rnn is None else bool(use_rnn)
        self.obs_agent_id = obs_agent_id
        self.obs_last_action = obs_last_action
        self.mixing_embed_dim = mixing_embed_dim
        self.hypernet_layers = hypernet_layers
        self.hypernet_embed = hypernet_embed
        self._init_dst(dst_config)

        self.agent = AgentNetwork(self.input_dim, hidden_dim, self.n_actions, self.use_rnn)
        self.mixer = self.make_mixer()
        for name in self.sparse_modules:
            config = self.module_sparse_config(name)
            if config is not None:
                sparsify_module(config, getattr(self, name).sparse_candidates(), getattr(self, name))
        self.agent_target = copy.deepcopy(self.agent)
        self.mixer_target = copy.deepcopy(self.mixer)
        self.agent_target.requires_grad_(False)
        self.mixer_target.requires_grad_(False)
        parameters = [*self.agent.parameters(), *self.mixer.parameters()]
        self.optimizer = self.optimizer_class(parameters, lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]
        prefer_fused(self.optimizer)
        for name in self.sparse_modules:
            if get_regime(self.module_configs[name].regime).dynamic:
                check_optimizer(self.optimizer, name)

    def make_mixer(self) -> nn.Module:
        return QMixer(self.n_agents, self.state_dim, self.mixing_embed_dim, self.hypernet_layers, self.hypernet_embed)

    @property
    def input_dim(self) -> int:
        """Size of one agent's network input."""
        return self.obs_dim + self.n_agents * self.obs_agent_id + self.n_actions * self.obs_last_action

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("normalize_images")  # no images: observations are flat vectors
        data.update(
            lr_schedule=ConstantSchedule(self.optimizer.param_groups[0]["lr"]),
            n_agents=self.n_agents,
            state_dim=self.state_dim,
            hidden_dim=self.hidden_dim,
            use_rnn=self.use_rnn,
            obs_agent_id=self.obs_agent_id,
            obs_last_action=self.obs_last_action,
            mixing_embed_dim=self.mixing_embed_dim,
            hypernet_layers=self.hypernet_layers,
            hypernet_embed=self.hypernet_embed,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def agent_inputs(self, observations: th.Tensor, last_actions: th.Tensor | None = None) -> th.Tensor:
        """Each agent's network input: ``observations [..., n_agents, obs_dim]`` with its id and last action.

        :param last_actions: previous actions ``[..., n_agents]`` (``-1``: none yet), needed with ``obs_last_action``
        """
        parts = [observations.float()]
        if self.obs_agent_id:
            ids = th.eye(self.n_agents, device=observations.device)
            parts.append(ids.expand(*observations.shape[:-2], self.n_agents, self.n_agents))
        if self.obs_last_action:
            if last_actions is None:
                raise ValueError("obs_last_action=True needs the agents' last actions")
            one_hot = nn.functional.one_hot(last_actions.long().clamp(min=0), self.n_actions).float()
            parts.append(one_hot * (last_actions >= 0).unsqueeze(-1).float())
        return th.cat(parts, dim=-1)

    def agent_q_values(
        self, inputs: th.Tensor, hidden: th.Tensor | None = None, target: bool = False
    ) -> tuple[th.Tensor, th.Tensor]:
        """Q-values of every agent at one step: ``inputs [batch, n_agents, input_dim]`` -> ``[batch, n_agents, n_actions]``.

        :param hidden: the recurrent state ``[batch, n_agents, hidden_dim]`` (zeros: the start of an episode)
        :param target: use the target agent network
        :return: the Q-values and the next recurrent state
        """
        network = self.agent_target if target else self.agent
        batch = inputs.shape[0]
        flat_hidden = (
            network.initial_state(batch * self.n_agents, inputs.device)
            if hidden is None
            else hidden.reshape(batch * self.n_agents, -1)
        )
        q_values, next_hidden = network(inputs.reshape(batch * self.n_agents, -1), flat_hidden)
        return q_values.view(batch, self.n_agents, -1), next_hidden.view(batch, self.n_agents, -1)

    def unroll(self, inputs: th.Tensor, target: bool = False) -> th.Tensor:
        """Q-values over whole episodes: ``inputs [batch, T, n_agents, input_dim]`` -> ``[batch, T, n_agents, n_actions]``."""
        hidden = None
        outputs = []
        for t in range(inputs.shape[1]):
            q_values, hidden = self.agent_q_values(inputs[:, t], hidden, target)
            outputs.append(q_values)
        return th.stack(outputs, dim=1)

    def mix(self, agent_qs: th.Tensor, states: th.Tensor, target: bool = False) -> th.Tensor:
        """The team value ``[..., 1]`` of the agents' chosen values ``[..., n_agents]`` in ``states``."""
        return (self.mixer_target if target else self.mixer)(agent_qs, states)

    def greedy_actions(self, q_values: th.Tensor, avail_actions: th.Tensor | None) -> th.Tensor:
        """The best available action of each agent."""
        if avail_actions is not None:
            q_values = q_values.masked_fill(avail_actions <= 0, -float("inf"))
        return q_values.argmax(dim=-1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("use agent_q_values / unroll / mix, or the algorithm's predict")

    def set_training_mode(self, mode: bool) -> None:
        self.agent.train(mode)
        self.mixer.train(mode)
        self.training = mode


class MlpQMIXPolicy(QMIXPolicy):
    """:class:`QMIXPolicy` with feed-forward agents (``use_rnn=False``)."""

    default_use_rnn = False


class VDNPolicy(QMIXPolicy):
    """Agent network and its target, mixed by a sum (VDN: the mixer has no weights, so ``agent`` is the only module)."""

    sparse_modules: ClassVar[dict[str, ModuleSpec]] = {"agent": ModuleSpec("agent", "agent_target", "optimizer")}

    def make_mixer(self) -> nn.Module:
        return VDNMixer()


class MlpVDNPolicy(VDNPolicy):
    """:class:`VDNPolicy` with feed-forward agents (``use_rnn=False``)."""

    default_use_rnn = False


def matrix_weights(policy: QMIXPolicy) -> int:
    """Weights of the online agent and mixer networks in matrices (biases left out, as the FLOPs convention does)."""
    networks = (policy.agent, policy.mixer)
    return sum(p.numel() for network in networks for p in network.parameters() if p.dim() >= 2)


def tiny_policy_kwargs(
    policy_class: type[QMIXPolicy],
    sparsity: float,
    observation_space: spaces.Box,
    action_space: spaces.Discrete,
    n_agents: int,
    state_dim: int,
    policy_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """MAST's *Tiny* baseline: a dense policy whose widths are shrunk by one factor until it has about as many
    weights as the full-size dense policy keeps active at ``sparsity``.

    :return: ``policy_kwargs`` with ``hidden_dim``, ``mixing_embed_dim`` and ``hypernet_embed`` replaced
    """
    base = {"hidden_dim": 64, "mixing_embed_dim": 32, "hypernet_embed": 64, **(policy_kwargs or {})}
    base.pop("dst_config", None)

    def weights(kwargs: dict[str, Any]) -> int:
        policy = policy_class(observation_space, action_space, ConstantSchedule(1e-3), n_agents, state_dim, **kwargs)
        return matrix_weights(policy)

    def scaled(factor: float) -> dict[str, Any]:
        widths = {key: max(1, round(base[key] * factor)) for key in ("hidden_dim", "mixing_embed_dim", "hypernet_embed")}
        return {**base, **widths}

    budget = (1.0 - sparsity) * weights(base)
    low, high = 0.0, 1.0
    for _ in range(12):  # the weight count grows with the factor: bisect
        middle = (low + high) / 2
        if weights(scaled(middle)) > budget:
            high = middle
        else:
            low = middle
    return scaled(low)
