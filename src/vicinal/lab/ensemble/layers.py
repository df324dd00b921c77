"""Stacked model: M networks of one architecture run as one, every parameter on a leading member axis.

Linear layers are batched matrix products (``torch.baddbmm``, through an autograd function whose
backward writes the weight gradient in the parameter's layout), convolutions one grouped ``conv2d``;
one backward pass serves all members, whose parameters are disjoint, so each gets exactly its own
gradient. :func:`check_batchable` refuses layers with no stacked form, BatchNorm above all.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models import StagedModel, _FourierFeatures


class UnsupportedModelError(ValueError):
    """A model that cannot be trained as a stacked ensemble.

    Attributes
    ----------
    model : str
        The model's registry name.
    reason : str
        Which layer stops it and why.
    """

    def __init__(self, model: str, reason: str):
        self.model, self.reason = model, reason
        super().__init__(f"model {model!r} cannot be trained as a batched ensemble: {reason}")



_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.ELU, nn.Identity)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_LAYERS = (nn.Linear, nn.Conv2d, nn.Flatten, _FourierFeatures)


def _is_container(module: nn.Module) -> bool:
    """Modules whose forward applies their children in order (and nothing else)."""
    if isinstance(module, StagedModel):
        return type(module).forward is StagedModel.forward
    return type(module) in (nn.Sequential, nn.ModuleList)


def _unsupported_reason(path: str, module: nn.Module) -> str | None:
    where = path or "the model itself"
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return (f"layer {where} is a {type(module).__name__}: it normalises with each member's own batch "
                f"statistics and updates running buffers, which the stacked forward does not reproduce")
    if _is_container(module) or isinstance(module, _ELEMENTWISE + _POOLS + (nn.Linear, _FourierFeatures)):
        return None
    if isinstance(module, nn.Softmax):  # over the last (class) axis it acts per member unchanged
        return None if module.dim == -1 else f"layer {where} is a Softmax over dim {module.dim}, not the last axis"
    if isinstance(module, nn.Flatten):
        if (module.start_dim, module.end_dim) != (1, -1):
            return f"layer {where} flattens other dims than 1..-1"
        return None
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros":
            return f"layer {where} is a grouped or non-zero-padded Conv2d"
        return None
    return f"layer {where} is a {type(module).__name__}, which has no stacked implementation"


def check_batchable(model: nn.Module, name: str) -> None:
    """Raise :class:`UnsupportedModelError` naming ``name`` and the first layer that cannot be stacked.

    Supported: :class:`~vicinal.lab.models.StagedModel` built from Sequential, Linear, Conv2d
    (groups 1, zero padding), Flatten, ReLU/Tanh/GELU/Sigmoid/ELU, max/average pooling and random
    Fourier features, i.e. the ``mlp``, ``rff`` and ``lenet`` models. BatchNorm is reported first,
    wherever it sits.
    """
    modules = list(model.named_modules())
    ordered = sorted(modules, key=lambda item: not isinstance(item[1], nn.modules.batchnorm._NormBase))
    for path, module in ordered:
        reason = _unsupported_reason(path, module)
        if reason is not None:
            raise UnsupportedModelError(name, reason)


class StackedModel:
    """M models of one architecture, their parameters stacked on a leading member axis.

    ``stacked(x)`` maps inputs ``(M, B, ...)`` to outputs ``(M, B, ...)``: member m's slice is
    ``models[m](x[m])`` up to rounding. Linear layers are ``torch.baddbmm``, convolutions one grouped
    ``conv2d`` with ``groups = M`` (measured faster on CPU than ``torch.func.functional_call`` under
    ``torch.vmap``; see ``benchmarks/ensemble_speed.py``).

    Parameters
    ----------
    models : sequence of StagedModel
        Same architecture (checked by parameter and buffer names and shapes).
    name : str
        Registry name, for error messages.

    Attributes
    ----------
    params : dict of str to Tensor
        Leaf tensors ``(M, *shape)`` that require grad, keyed by the models' parameter names.
    buffers : dict of str to Tensor
        Stacked buffers (e.g. the fixed random features of ``rff``).
    """

    def __init__(self, models: Sequence[nn.Module], name: str):
        if not models:
            raise ValueError("StackedModel needs at least one model, got none")
        self.template, self.name = models[0], name
        check_batchable(self.template, name)
        self.params = {key: torch.stack(values).requires_grad_(True)
                       for key, values in _collect(models, "named_parameters", name).items()}
        self.buffers = {key: torch.stack(values) for key, values in _collect(models, "named_buffers", name).items()}

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def __call__(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs ``(M, B, ...)`` of inputs ``(M, B, ...)``; with ``members`` (indices, A of them), only
        those members run, on inputs ``(A, B, ...)``."""
        tensors = {**self.params, **self.buffers}
        if members is not None:
            tensors = {key: value.index_select(0, members) for key, value in tensors.items()}
        return self._apply(self.template, "", x, tensors)

    def load_member(self, member: int, model: nn.Module) -> nn.Module:
        """Copy member ``member``'s parameters into ``model`` (built like the members) and return it."""
        with torch.no_grad():
            for key, param in model.named_parameters():
                param.copy_(self.params[key][member])
        return model

    def _apply(self, module: nn.Module, prefix: str, h: torch.Tensor, tensors: dict) -> torch.Tensor:
        if _is_container(module):
            for child_name, child in module.named_children():
                h = self._apply(child, f"{prefix}{child_name}.", h, tensors)
            return h
        if isinstance(module, nn.Linear):
            return _StackedLinear.apply(h, tensors[prefix + "weight"], tensors.get(prefix + "bias"))
        if isinstance(module, nn.Flatten):
            return h.flatten(2)
        if isinstance(module, nn.Conv2d):
            return _conv(module, tensors[prefix + "weight"], tensors.get(prefix + "bias"), h)
        if isinstance(module, _FourierFeatures):
            projection, offset = tensors[prefix + "projection"], tensors[prefix + "offset"]
            return torch.cos(torch.baddbmm(offset.unsqueeze(1), h.flatten(2), projection.transpose(1, 2))) \
                / math.sqrt(offset.shape[1])
        if isinstance(module, _POOLS):
            return module(h.flatten(0, 1)).unflatten(0, h.shape[:2])
        return module(h)  # element-wise activation


class _StackedLinear(torch.autograd.Function):
    """``h @ weight[m].T + bias[m]`` per member, with a backward that writes the weight gradient in place.

    With autograd's own backward of ``baddbmm(bias, h, weight.transpose(1, 2))`` the weight gradient
    comes out transposed and is copied into the parameter's layout at every step; here it is computed
    in the orientation whose result is contiguous (or, for a layer wider at its output, in the faster
    orientation and then transposed, a small copy). Measured on 100 spirals MLPs, one thread: forward
    + backward 6.2 -> 3.9 ms (``benchmarks/ensemble_speed.py`` times the whole step).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            if weight.shape[1] > weight.shape[2]:  # out > in: a narrow gemm output is slow, so transpose after
                grad_weight = torch.bmm(h.transpose(1, 2), grad).transpose(1, 2).contiguous()
            else:
                grad_weight = torch.bmm(grad.transpose(1, 2), h)
        grad_bias = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_h, grad_weight, grad_bias


def _conv(module: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """Stacked convolution as one grouped ``conv2d``: member m's channels form group m."""
    members, batch = h.shape[:2]
    grouped = h.transpose(0, 1).reshape(batch, members * h.shape[2], *h.shape[3:])
    out = F.conv2d(grouped, weight.flatten(0, 1), None if bias is None else bias.flatten(),
                   module.stride, module.padding, module.dilation, groups=members)
    return out.reshape(batch, members, weight.shape[1], *out.shape[2:]).transpose(0, 1)


def _collect(models: Sequence[nn.Module], method: str, name: str) -> dict[str, list[torch.Tensor]]:
    first = [(key, tuple(t.shape)) for key, t in getattr(models[0], method)()]
    out: dict[str, list[torch.Tensor]] = {key: [] for key, _ in first}
    for i, model in enumerate(models):
        tensors = list(getattr(model, method)())
        if [(key, tuple(t.shape)) for key, t in tensors] != first:
            raise ValueError(f"models[{i}] of {name!r} has other {method[6:]} than models[0]; "
                             f"members of one batch need one architecture")
        for key, tensor in tensors:
            out[key].append(tensor.detach())
    return out

