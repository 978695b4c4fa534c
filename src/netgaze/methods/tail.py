"""The part of a network after one layer, run on its own (torch.fx), for layer perturbation methods.

``LayerTail(model, module, x)`` traces the model with the layer as a leaf, runs it once
on ``x`` keeping every intermediate value, and then ``run(i, replaced)`` evaluates only
the nodes that depend on the layer, for a batch of replacement outputs of sample ``i``
(values the tail needs from before the layer, such as skip connections, are sample ``i``'s,
repeated). ``build`` returns None when the model cannot be traced or the tail does not
reproduce the model's own output: callers then fall back to full forward passes with
the layer's output replaced.
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
    def __init__(self, graph_module: fx.GraphModule, node: fx.Node, env: dict, rows: int):
        self.gm, self.node, self.env, self.rows = graph_module, node, env, rows
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
        needed = {a for n in tail for a in n.all_input_nodes if a not in tail and a is not node}
        self.external = [a for a in needed if a in batched]
        self.constant = {n: v for n, v in env.items() if n not in tail and n is not node}

    def run(self, i: int, replaced: torch.Tensor) -> Any:
        """The model's raw output for ``replaced`` [n, ...] outputs of the layer for sample ``i``."""
        n = replaced.shape[0]
        env = dict(self.constant)
        for a in self.external:
            env[a] = _rows_of(self.env[a], i, n, self.rows)
        env[self.node] = replaced
        interpreter = fx.Interpreter(self.gm, garbage_collect_values=False)
        with torch.no_grad():
            return interpreter.run(*[None] * _placeholders(self.gm), initial_env=env)


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
        interpreter = fx.Interpreter(gm, garbage_collect_values=False)
        with torch.no_grad():
            interpreter.run(*as_tuple(x))
        return LayerTail(gm, nodes[0], dict(interpreter.env), as_tuple(x)[0].shape[0])
    except Exception:           # untraceable control flow, unsupported ops: the caller falls back
        return None
