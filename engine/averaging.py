"""An exponential moving average of the generator's weights, used to generate the frames (train.average).

Why: at Adam's lr 0.01 to the last step, the weights a run ends on are one noisy sample of where training is,
and the frames generated from them jump by up to a few dB of hole PSNR from one step to the next
(docs/evaluation.md, "A stable result"). The average of the last few hundred steps' weights sits in the middle of
that noise.

How it stays exact: the average is a submodule of the model holding buffers only, so it is in model.state_dict()
(and so in every checkpoint, in the trainer's roll-back snapshots and in a CUDA graph's fixed addresses), and it is
updated by an optimizer step hook with tensor arithmetic only, so a resumed run averages exactly the steps an
uninterrupted one does, and a captured step replays the update too.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

NAME = "weight_average"
"""The submodule's name in the model (its buffers appear as weight_average.* in state_dicts)."""


class WeightAverage(nn.Module):
    """Shadow copies of `params`; after each step shadow <- d * shadow + (1 - d) * param, with
    d = min(decay, (1 + n) / (10 + n)) at the n-th update (a short memory at first, as the weights move most)."""

    def __init__(self, params: list[torch.Tensor], decay: float):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"a weight average needs a decay between 0 and 1, not {decay!r}")
        self.decay = float(decay)
        self._params = list(params)  # not registered: the model owns them
        for i, p in enumerate(self._params):
            self.register_buffer(f"w{i}", p.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.float32, device=self._params[0].device))

    def shadows(self) -> list[torch.Tensor]:
        return [getattr(self, f"w{i}") for i in range(len(self._params))]

    @torch.no_grad()
    def update(self) -> None:
        self.updates.add_(1.0)
        d = torch.clamp((1.0 + self.updates) / (10.0 + self.updates), max=self.decay)
        shadows = self.shadows()
        torch._foreach_mul_(shadows, d)
        torch._foreach_add_(shadows, torch._foreach_mul([p.detach() for p in self._params], 1.0 - d))

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self):
        """The model's parameters replaced by the average inside the block, and given back after it."""
        saved = [p.detach().clone() for p in self._params]
        try:
            for p, w in zip(self._params, self.shadows()):
                p.copy_(w)
            yield
        finally:
            for p, s in zip(self._params, saved):
                p.copy_(s)


def attach(model: nn.Module, optimizer: torch.optim.Optimizer, decay: float) -> WeightAverage | None:
    """Give `model` an average of its parameters, updated after every `optimizer.step()`. decay 0: none (None).
    Call before anything takes a list of the model's state_dict tensors (the trainer's snapshots)."""
    if decay <= 0:
        return None
    average = WeightAverage(list(model.parameters()), decay)
    model.add_module(NAME, average)
    optimizer.register_step_post_hook(lambda *_: average.update())
    return average


def applied(average: WeightAverage | None):
    """average.applied(), or nothing when there is no average."""
    return average.applied() if average is not None else contextlib.nullcontext()
