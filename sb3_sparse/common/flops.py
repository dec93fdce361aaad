"""FLOPs and sparsity reports of SB3 models, sparse or dense (the counting is in :mod:`sb3_sparse.core.accounting`)."""

from typing import Any

from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

from sb3_sparse.common.actor_critic import actor_critic_networks
from sb3_sparse.common.policies import SparsePolicyMixin, sparse_policy_of
from sb3_sparse.core.accounting import CountedModule, count_active, count_module, flops_summary, weight_rows

#: The networks that act in SB3's off-policy policies (the actor; DQN's Q-network), in the order looked for.
SB3_ACTING_NETWORKS = ("actor", "q_net")
#: The suffix of a target network's attribute in SB3's policies (``critic_target`` of ``critic``).
TARGET_SUFFIX = "_target"


def counted_modules(model_or_policy: Any) -> tuple[list[CountedModule], list[CountedModule]]:
    """The modules of a model (or policy) as FLOPs count them, and those whose forward pass is its inference.

    A sparse policy's modules are its DST modules, each counted ``policy.module_copies`` times (a network
    shared by the agents of a team, once per agent). A dense SB3 off-policy policy's modules are its networks
    (``actor``, ``critic``, ``q_net``, ...: every child but the target networks), with their features
    extractors left out as in the sparse policies; the ``actor`` (DQN: the ``q_net``) acts. A dense SB3 actor-critic
    policy (PPO, A2C) has an ``actor`` and a ``critic``, as the sparse one.

    :param model_or_policy: an SB3 model (``SAC``, ``SparseSAC``, ``QMIX``, ...) or its policy
    """
    policy = getattr(model_or_policy, "policy", model_or_policy)
    if isinstance(policy, SparsePolicyMixin):
        copies = {name: int(getattr(policy, attribute)) for name, attribute in policy.module_copies.items()}
        modules = {
            name: count_module(name, binding.online, binding.exclude, binding.target is not None, copies.get(name, 1))
            for name, binding in policy.sparse_bindings().items()
        }
        acting = [modules[policy.inference_module]]
        if "encoder" in modules:  # the acting network reads observations through its copy of the encoder
            extractor = getattr(policy, policy.inference_module).features_extractor
            acting.append(count_module("encoder", extractor, copies=acting[0].copies))
        return list(modules.values()), acting
    exclude = SparsePolicyMixin.flops_exclude
    if isinstance(policy, ActorCriticPolicy):
        networks = {name: count_module(name, net, exclude) for name, net in actor_critic_networks(policy).items()}
        return list(networks.values()), [networks["actor"]]
    children = dict(policy.named_children()) if isinstance(policy, BasePolicy) else {}
    acting_name = next((name for name in SB3_ACTING_NETWORKS if name in children), None)
    if acting_name is None:
        raise TypeError(
            "FLOPs are counted for SB3's models (SAC, TD3, DQN, PPO, A2C, ..., their sparse forms, QMIX, VDN) or "
            f"their policies, got {type(model_or_policy).__name__}"
        )
    dense = {
        name: count_module(name, network, exclude, f"{name}{TARGET_SUFFIX}" in children)
        for name, network in children.items()
        if not name.endswith(TARGET_SUFFIX)
    }
    return list(dense.values()), [dense[acting_name]]


def flops_report(model_or_policy: Any) -> dict[str, Any]:
    """Per-layer weights, active weights and FLOPs of a model (or policy), sparse or dense.

    :param model_or_policy: a sparse model (``SparseSAC``, ``QMIX``, ...), an SB3 model with a sparse policy, a
        dense SB3 model (``SAC``, ``TD3``, ``DQN``, ``PPO``, ``A2C``, ...: its ratios are 1), or the policy of any of them
    :return: a dict with ``"layers"`` (one dict per weight matrix: ``module``, ``layer``, ``shape``, ``sparse``,
        ``weights``, ``active_weights``, ``density``), the totals ``weights``, ``active_weights``,
        ``sparsity`` (over the sparse layers), ``inference_flops`` / ``dense_inference_flops`` /
        ``inference_flops_ratio`` (one forward pass of the acting module, with its encoder if the policy has
        one, once per agent for a shared agent network), ``training_flops`` / ``dense_training_flops`` /
        ``training_flops_ratio`` (one training step of every module, and of every copy of it, at the current
        masks), ``integrated_training_flops_ratio`` (the training FLOPs of the run so far over dense, charging
        every phase at the density it had; ``None`` before training) and ``table`` (readable text)
    """
    modules, acting = counted_modules(model_or_policy)
    copies = {module.name: module.copies for module in modules}
    states = getattr(model_or_policy, "dst_state", {}).get("modules", {})
    dense_run = sum(copies.get(name, 1) * state["dense_train_flops"] for name, state in states.items())
    integrated = None
    if dense_run > 0:
        integrated = sum(copies.get(name, 1) * state["train_flops"] for name, state in states.items()) / dense_run
    return flops_summary(modules, acting, integrated)


def module_sparsity(model_or_policy: Any) -> dict[str, float]:
    """Realised sparsity over the sparse weights of each module's online network, and over all (``"global"``)."""
    policy = sparse_policy_of(model_or_policy, "module_sparsity")
    counts = {
        name: count_active(weight_rows(name, binding.online, binding.exclude))
        for name, binding in policy.sparse_bindings().items()
    }
    counts["global"] = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
    return {name: 1.0 - active / total if total else 0.0 for name, (active, total) in counts.items()}
