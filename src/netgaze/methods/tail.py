"""The part of a network after one layer, run on its own (torch.fx), for layer perturbation methods.

``build(model, module, x)`` traces the model with the layer as a leaf and runs it once on
``x``, keeping only the values the tail reads from before the layer (skip connections);
``tail.run(i, replaced)`` then evaluates only the nodes that depend on the layer, for a
batch of replacement outputs of sample ``i`` (the kept values are sample ``i``'s, repeated).
``build`` returns None when the model cannot be traced; callers also check that the tail
reproduces the model's own scores, and otherwise fall back to full forward passes with the
layer's output replaced.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from netgaze.core.inputs import Inputs, as_tuple


class _Tracer(fx.Tracer):
    def __init__(self, leaf: nn.Module):
        super().__init__()
        self.leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return m is self.leaf or super().is_leaf_module(m, qualname)


class LayerTail:
    def __init__(self, graph_module: fx.GraphModule, node: fx.Node):
        self.gm, self.node = graph_module, node
        nodes = list(graph_module.graph.nodes)
        tail = {node}
        for n in nodes[nodes.index(node) + 1:]:
            if any(a in tail for a in n.all_input_nodes):
                tail.add(n)
        tail.discard(node)
        self.tail = tail
        batched = set()
        for n in nodes:
            if n.op == "placeholder" or any(a in batched for a in n.all_input_nodes):
                batched.add(n)
        # values the tail reads from before the layer; every other node is skipped (None in the env)
        self.needed = {a for n in tail for a in n.all_input_nodes if a not in tail and a is not node}
        self.batched = batched
        self.values: dict = {}
        self.rows = 0

    def record(self, x: Inputs) -> None:
        """Run the model once on ``x``, keeping only the values the tail reads."""
        keep = _Keeping(self.gm, self.needed)
        with torch.no_grad():
            keep.run(*as_tuple(x))
        self.values = keep.kept
        self.rows = as_tuple(x)[0].shape[0]

    def run(self, i: int, replaced: torch.Tensor) -> Any:
        """The model's raw output for ``replaced`` [n, ...] outputs of the layer for sample ``i``."""
        n = replaced.shape[0]
        env: dict = {m: None for m in self.gm.graph.nodes if m not in self.tail}
        for a in self.needed:
            value = self.values[a]
            env[a] = _rows_of(value, i, n, self.rows) if a in self.batched else value
        env[self.node] = replaced
        interpreter = fx.Interpreter(self.gm, garbage_collect_values=True)
        with torch.no_grad():
            return interpreter.run(*[None] * _placeholders(self.gm), initial_env=env)


class _Keeping(fx.Interpreter):
    """An interpreter that frees values as usual but keeps those of ``wanted`` nodes."""

    def __init__(self, gm: fx.GraphModule, wanted: set):
        super().__init__(gm, garbage_collect_values=True)
        self.wanted = wanted
        self.kept: dict = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        if n in self.wanted:
            self.kept[n] = value
        return value


def _placeholders(gm: fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.op == "placeholder")


def _rows_of(value: Any, i: int, n: int, rows: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows:
        return value[i:i + 1].repeat(n, *[1] * (value.dim() - 1))
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_rows_of(v, i, n, rows) for v in value)
    return value


def build(model: nn.Module, module: nn.Module, x: Inputs) -> LayerTail | None:
    """The tail after ``module`` with the values of one run on ``x``; None when it cannot be built.

    The model must already be in the mode it is explained in (eval).
    """
    try:
        tracer = _Tracer(module)
        graph = tracer.trace(model)
        gm = fx.GraphModule(tracer.root, graph)
        path = tracer.path_of_module(module)
        nodes = [n for n in graph.nodes if n.op == "call_module" and n.target == path]
        if len(nodes) != 1 or _placeholders(gm) != len(as_tuple(x)):
            return None
        tail = LayerTail(gm, nodes[0])
        tail.record(x)
        return tail
    except Exception:           # untraceable control flow, unsupported ops: the caller falls back
        return None
