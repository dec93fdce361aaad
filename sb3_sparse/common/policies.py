"""What the package's SB3 policies share: per-module DST configuration, the residual architecture of their
networks and its presets, and the engine's view of the networks."""

from collections.abc import Mapping
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_sparse.common.architectures import preset_kwargs
from sb3_sparse.common.networks import encoder_candidates
from sb3_sparse.core.backends import set_backend
from sb3_sparse.core.config import ModuleConfig, resolve_modules
from sb3_sparse.core.engine import ModuleBinding, sparsify_module
from sb3_sparse.core.optim import check_optimizer, prefer_fused
from sb3_sparse.core.regimes import get_regime


class ModuleSpec(NamedTuple):
    """Where a module lives in a policy: attribute paths of its online network, target network, optimizer
    (and of other optimizers that train some of its weights)."""

    online: str
    target: str | None
    optimizer: str
    other_optimizers: tuple[str, ...] = ()


#: The encoder of an actor-critic policy: the features extractors of the critic and the actor (one, when
#: shared), with their target copies. The critic's optimizer is its clock; the actor's trains its copy
#: (or, as in SB3, the shared one).
ENCODER = ModuleSpec("encoders", "encoder_targets", "critic.optimizer", ("actor.optimizer",))

#: ``dst_config`` of a policy trained dense (every module).
DENSE: dict[str, Any] = {"regime": "dense"}


class ResolvedDSTConfig(dict):  # type: ignore[type-arg]
    """DST settings as given (plain data: what a policy saves) that carry their resolution per module, so that a
    policy built from them (by a sparse algorithm, which resolved them at its construction) does not resolve
    them again.

    :param settings: the flat settings plus ``"modules"``
    :param module_configs: their resolution, one :class:`~sb3_sparse.core.config.ModuleConfig` per module
    """

    def __init__(self, settings: Mapping[str, Any], module_configs: dict[str, ModuleConfig]):
        super().__init__(settings)
        self.module_configs = module_configs


class SparsePolicyMixin:
    """Mixed into an SB3 policy (before it in the bases) whose networks are sparse, and residual on request.

    A subclass names its modules and where they live (``sparse_modules``: module name ->
    :class:`ModuleSpec`), and builds its networks with the package's network classes
    (:attr:`actor_class`, :attr:`critic_class` for an actor-critic policy), passing each
    :meth:`network_kwargs`: the policy's ``architecture`` and its module's :attr:`module_configs` entry.

    :param dst_config: the DST settings: flat ones for every module plus ``"modules"`` (per-module
        overrides), as the sparse algorithms take them; ``None``: :attr:`default_dst_config`
    """

    #: module name -> where its networks and optimizer are
    sparse_modules: ClassVar[dict[str, ModuleSpec]] = {}
    #: the module whose forward pass is the agent's inference (FLOPs)
    inference_module: ClassVar[str] = "actor"
    #: ``dst_config`` when none is given (``{}``: the defaults of :class:`~sb3_sparse.core.config.ModuleConfig`)
    default_dst_config: ClassVar[dict[str, Any]] = {}
    #: the network classes of an actor-critic policy
    actor_class: ClassVar[type[nn.Module]]
    critic_class: ClassVar[type[nn.Module]]
    #: module name -> the policy attribute that says how many copies of it run per sample (a network shared by
    #: the agents of a team runs once per agent): FLOPs count it that many times (1 for modules not named)
    module_copies: ClassVar[dict[str, str]] = {}
    #: modules that stay dense unless ``modules`` names them (the flat DST settings do not reach them alone)
    explicit_modules: ClassVar[tuple[str, ...]] = ()
    #: modules trained once every ``policy_delay`` gradient steps of the algorithm (TD3's and CrossQ's actor)
    delayed_modules: ClassVar[tuple[str, ...]] = ()
    #: parts of the networks that are not part of the actor's or critic's module: left out of their masks,
    #: updates and FLOPs (features extractors: dense, or the ``encoder`` module)
    flops_exclude: ClassVar[tuple[str, ...]] = ("features_extractor",)

    #: the residual architecture of the networks (``None``: SB3's MLPs)
    architecture: str | None = None
    dst_config: dict[str, Any]
    module_configs: dict[str, ModuleConfig]
    actor_kwargs: dict[str, Any]
    critic_kwargs: dict[str, Any]

    def _init_dst(self, dst_config: Mapping[str, Any] | None) -> None:
        """Validate ``dst_config`` and resolve it per module, unless it comes resolved (:class:`ResolvedDSTConfig`);
        call before building the networks."""
        if isinstance(dst_config, ResolvedDSTConfig):
            self.module_configs = dict(dst_config.module_configs)
        else:
            config = dict(self.default_dst_config if dst_config is None else dst_config)
            modules = config.pop("modules", None)
            self.module_configs = resolve_modules(tuple(self.sparse_modules), config, modules, self.explicit_modules)
        self.dst_config = dict(self.default_dst_config if dst_config is None else dst_config)

    def module_sparse_config(self, module: str) -> ModuleConfig | None:
        """Constructor argument ``sparse_config`` of the network of ``module`` (``None``: dense)."""
        config = self.module_configs[module]
        return config if get_regime(config.regime).masked else None

    def network_kwargs(self, module: str) -> dict[str, Any]:
        """Constructor arguments of the network of ``module`` besides SB3's: the architecture and its DST settings."""
        return {"architecture": self.architecture, "sparse_config": self.module_sparse_config(module)}

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Any:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        return self.actor_class(**actor_kwargs, **self.network_kwargs("actor")).to(self.device)  # type: ignore[attr-defined]

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> Any:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)  # type: ignore[attr-defined]
        return self.critic_class(**critic_kwargs, **self.network_kwargs("critic")).to(self.device)  # type: ignore[attr-defined]

    def make_features_extractor(self) -> Any:
        """SB3's features extractor, made sparse by the ``encoder`` module's settings (a policy that has one)."""
        extractor = super().make_features_extractor()  # type: ignore[misc]
        config = self.module_sparse_config("encoder") if "encoder" in self.sparse_modules else None
        if config is not None:
            sparsify_module(config, encoder_candidates(extractor), extractor)
        return extractor

    @property
    def encoders(self) -> nn.ModuleDict:
        """The features extractors of the critic and the actor (the critic's first: one entry when shared)."""
        return self._extractor_view({"critic": "critic", "actor": "actor"})

    @property
    def encoder_targets(self) -> nn.ModuleDict | None:
        """The features extractors of the target networks, under the names of their online networks (``None``:
        no target networks, as in CrossQ)."""
        view = self._extractor_view({"critic": "critic_target", "actor": "actor_target"})
        return view if len(view) else None

    def _extractor_view(self, networks: dict[str, str]) -> nn.ModuleDict:
        view: dict[str, nn.Module] = {}
        for key, attribute in networks.items():
            network = getattr(self, attribute, None)
            if network is not None and not any(network.features_extractor is seen for seen in view.values()):
                view[key] = network.features_extractor
        return nn.ModuleDict(view)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["dst_config"] = self.dst_config
        if self.architecture is not None:
            data["architecture"] = self.architecture
        return data

    def _build(self, *args: Any, **kwargs: Any) -> None:
        super()._build(*args, **kwargs)  # type: ignore[misc]
        # PyTorch's fused Adam unless optimizer_kwargs chose a kernel (see core.optim.prefer_fused: the
        # unfused one is slow on the exact zeros that masked gradients leave in its second moment)
        # and refuse now, naming it, an optimizer whose per-weight state a dynamic regime could not reset
        for name, spec in self.sparse_modules.items():
            optimizer = attrgetter(spec.optimizer)(self)
            prefer_fused(optimizer)
            if get_regime(self.module_configs[name].regime).dynamic:
                check_optimizer(optimizer, name)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)  # type: ignore[misc]
        except RuntimeError as error:
            if "_mask" not in str(error):
                raise
            raise RuntimeError(
                f"the masks of these parameters do not match this policy's DST settings ({error}); a model saved by "
                "a sparse algorithm restores its settings only when loaded with it (e.g. SparseSAC.load, not SAC.load)"
            ) from None

    def set_backend(self, backend: str, frozen: bool = False) -> None:
        """Compute every module's sparse layers (online and target) with ``backend`` from now on.

        A runtime switch (results are the same up to float rounding); the ``backend`` DST argument sets the
        one a model is built and loaded with.

        :param backend: ``"auto"``, ``"masked"``, ``"csr"``, ``"condensed"`` or a registered one
        :param frozen: the policy is only used for inference from now on (see
            :func:`~sb3_sparse.core.backends.set_backend`)
        """
        for binding in self.sparse_bindings().values():
            set_backend(binding.online, backend, frozen)
            if binding.target is not None:
                set_backend(binding.target, backend, frozen)

    def sparse_bindings(self) -> dict[str, ModuleBinding]:
        """Where each module lives now: online and target networks and the optimizer."""
        bindings = {}
        for name, spec in self.sparse_modules.items():
            online: nn.Module = attrgetter(spec.online)(self)
            bindings[name] = ModuleBinding(
                online=online,
                target=attrgetter(spec.target)(self) if spec.target else None,
                optimizer=attrgetter(spec.optimizer)(self),
                other_optimizers=tuple(attrgetter(path)(self) for path in spec.other_optimizers),
                exclude=() if spec is ENCODER else self.flops_exclude,
            )
        return bindings


class ArchitecturePreset:
    """The first base of a preset policy (``SimbaPolicy``, ``BroPolicy``): the residual architecture
    :attr:`architecture` (here a class attribute: the argument's default) with its published training
    defaults, each unless given (see
    :func:`~sb3_sparse.common.architectures.preset_kwargs`: ``net_arch``, AdamW, a
    :class:`~sb3_sparse.common.architectures.ResidualEncoder` with running observation normalisation where the
    architecture uses it). A preset names the features extractors as a module of its own, ``encoder``, that
    stays dense unless ``modules`` names it."""

    #: the architecture of the preset
    architecture: str | None
    explicit_modules: ClassVar[tuple[str, ...]] = ("encoder",)

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, lr_schedule: Any, **kwargs: Any):
        kwargs = preset_kwargs(self.architecture, observation_space, kwargs)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)  # type: ignore[call-arg]


def sparse_policy_of(model_or_policy: Any, caller: str) -> Any:
    """The sparse policy of a model (or the policy itself); a ``TypeError`` naming ``caller`` for anything else."""
    policy = getattr(model_or_policy, "policy", model_or_policy)
    if not isinstance(policy, SparsePolicyMixin):
        raise TypeError(f"{caller} needs a sparse model (SparseSAC, ...) or its policy, got {type(model_or_policy).__name__}")
    return policy
