"""Small torch helpers shared by generators, the trainer and the evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from ct_plugin.errors import CTPluginError


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode with ``requires_grad=False`` on every parameter, restore both after.

    Searches take gradients with respect to inputs only; freezing the parameters makes
    sure no gradient is accumulated on them and BatchNorm/Dropout behave as at inference.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield model
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        model.train(was_training)


#: rows per no-gradient forward pass of a model without convolutions (its activations are a few columns per row)
DENSE_CHUNK = 65536
#: the same for a model with convolutions: on the CPU a convolution unfolds its input (im2col), so a LeNet's
#: first layer holds 25 floats per pixel of every image in the pass: 160 MB for 2,048 28x28 images, 20 MB for 256
CONV_CHUNK = 256


def inference_chunk(model: torch.nn.Module) -> int:
    """Rows per no-gradient forward pass: :data:`CONV_CHUNK` for a model with convolutions, else :data:`DENSE_CHUNK`."""
    has_conv = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    return CONV_CHUNK if has_conv else DENSE_CHUNK


def predict_classes(model: torch.nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """The model's predicted class (argmax of the logits) per row of ``x``, in chunks of ``chunk`` rows
    (default :func:`inference_chunk`: few rows at a time for a convolutional model, to bound its memory)."""
    if not len(x):
        return torch.zeros(0, dtype=torch.long, device=x.device)
    size = inference_chunk(model) if chunk is None else chunk
    with frozen(model), torch.no_grad():
        return torch.cat([model(part).argmax(dim=1) for part in torch.split(x, size)])


def all_finite(values: torch.Tensor | object, block: int = 1 << 20) -> bool:
    """Whether every entry of ``values`` (a tensor or an array) is finite, checked about ``block`` entries at a time.

    ``torch.isfinite`` on a whole matrix writes full-size temporaries (an absolute-value copy and two masks,
    1.5x the matrix: 300 MB on Fashion-MNIST's 60,000 training images, the peak of a whole training run);
    blocks of rows keep them to a few MB.
    """
    tensor = torch.as_tensor(values)
    if tensor.ndim == 0 or not len(tensor):
        return bool(torch.isfinite(tensor).all())
    rows = max(1, block // max(1, tensor[0].numel()))
    return all(bool(torch.isfinite(part).all()) for part in torch.split(tensor, rows))


def check_finite_outputs(model: torch.nn.Module, x: torch.Tensor, what: str, rows: int = 256) -> None:
    """Refuse a model whose weights or logits on (up to ``rows`` of) ``x`` are NaN or infinite.

    Such a model cannot be evaluated or benchmarked: every metric of it would be meaningless.
    """
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
    if bad:
        raise CTPluginError(f"{what} has non-finite weights ({', '.join(bad[:3])}): it cannot be evaluated")
    with frozen(model), torch.no_grad():
        logits = model(x[:rows].to(model_device(model)))
    if not bool(torch.isfinite(logits).all()):
        raise CTPluginError(f"{what} outputs NaN or infinite logits on its test rows: it cannot be evaluated")


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-free module)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``"auto"``/``None``/``"cpu"``/``"cuda"``/``"cuda:1"`` into a torch device, with a clear error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise CTPluginError(f"invalid device {device!r}; use auto, cpu or cuda[:index]") from exc
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise CTPluginError(f"invalid device {device!r}: training needs real memory; use auto, cpu or cuda[:index]")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CTPluginError("device 'cuda' was requested but torch reports no CUDA device; use --device cpu")
    return resolved


def check_logits(
    model: torch.nn.Module, n_features: int, n_classes: int, sizes: tuple[int, ...] = (2, 3)
) -> None:
    """Check that ``model`` maps (n, n_features) to (n, n_classes) logits for each n in ``sizes``."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        for n in dict.fromkeys(sizes):
            probe = torch.zeros(n, n_features, device=device)
            try:
                with torch.no_grad():
                    out = model(probe)
            except Exception as exc:  # the user's module can fail in any way
                raise CTPluginError(
                    f"the model failed on input of shape ({n}, {n_features}) (a batch of {n} rows of the "
                    f"dataset's encoded width): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from exc
            if not isinstance(out, torch.Tensor) or out.shape != (n, n_classes):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise CTPluginError(
                    f"the model must map (n, {n_features}) inputs to (n, {n_classes}) logits "
                    f"(one per class); on {n} rows it returned {shape}"
                )
    finally:
        model.train(was_training)


@contextlib.contextmanager
def placed_on(models: torch.nn.Module | Sequence[torch.nn.Module], device: str | torch.device | None
              ) -> Iterator[torch.device]:
    """Move ``models`` to ``device`` for the block, then each back where it was; yields the resolved device.

    Measuring a model (evaluation, explanations) must not move the caller's model: code that
    feeds it CPU tensors afterwards works the same on a machine with a GPU as on one without.
    """
    modules = [models] if isinstance(models, torch.nn.Module) else list(models)
    resolved = resolve_device(device)
    homes = [model_device(module) for module in modules]
    try:
        for module in modules:
            module.to(resolved)
        yield resolved
    finally:
        for module, home in zip(modules, homes, strict=True):
            module.to(home)
