"""Where a worker computes: its GPU when `train.use_gpu` (Ray gives each worker one), else the CPU; and the
memory format its convolutions run fastest in."""

from __future__ import annotations

import torch

from rs.errors import RsError


def worker_device(use_gpu: bool) -> torch.device:
    if not use_gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RsError("train.use_gpu is set but torch sees no GPU in this worker (CPU-only torch build, or "
                      "CUDA_VISIBLE_DEVICES empty); set train.use_gpu=false or install torch with CUDA/ROCm")
    import ray.train.torch

    dev = ray.train.torch.get_device()  # the GPU Ray assigned to this worker
    if dev.type != "cuda":  # in-process runs (train.num_workers: 0) get no Ray GPU assignment
        dev = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(dev)
    return dev


def place(model: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """On `device`; channels-last (NHWC) weights let cuDNN run tensor-core convolutions without transposes."""
    return model.to(device=device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
