"""REVISE (Joshi et al. 2019): gradient search in the latent space of a VAE fitted to the training data.

The VAE depends on the data only, so it is trained once per dataset (and VAE setting)
and cached as a state dict under a key derived from the training data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ct_plugin.atomic import atomic_write
from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.generators.gradient import check_non_negative, check_search_settings
from ct_plugin.torch_utils import frozen


class TabularVAE(nn.Module):
    """A small fully-connected VAE over encoded (standardised) features."""

    def __init__(self, n_features: int, latent_dim: int = 8, hidden: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_features),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        h = self.encoder(x)
        return self.mu(h), self.log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction in encoded feature space."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decode(z), mu, log_var


def fit_vae(
    X: np.ndarray, latent_dim: int = 8, hidden: int = 64, epochs: int = 50, seed: int = 0, beta: float = 1.0
) -> TabularVAE:
    """Train a :class:`TabularVAE` on ``X`` with Adam (seeded)."""
    torch.manual_seed(seed)
    data = torch.as_tensor(X, dtype=torch.float32)
    vae = TabularVAE(data.shape[1], latent_dim, hidden)
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(seed)
    batch = 128
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=rng)
        for start in range(0, len(data), batch):
            x = data[order[start : start + batch]]
            recon, mu, log_var = vae(x)
            kl = -0.5 * torch.mean(torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=1))
            loss = F.mse_loss(recon, x, reduction="none").sum(dim=1).mean() + beta * kl
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    vae.eval()
    return vae


def default_cache_dir() -> Path:
    """``$CT_PLUGIN_CACHE`` or ``~/.cache/ct-plugin``."""
    return Path(os.environ.get("CT_PLUGIN_CACHE", Path.home() / ".cache" / "ct-plugin"))


class REVISEGenerator(CounterfactualGenerator):
    """Search z' minimising yloss(M(dec(z'))) + lambda_cost * ||dec(z') - x||_1, starting at enc(x).

    The decoded point is masked by the mutability constraints (forbidden changes are reset to
    the factual), clamped to the domain and made one-hot valid before the model sees it.
    """

    name = "revise"

    def __init__(
        self,
        step_size: float = 0.25,
        lambda_cost: float = 0.001,
        latent_dim: int = 8,
        hidden: int = 64,
        vae_epochs: int = 50,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ):
        self.step_size = check_non_negative("step_size", step_size, allow_zero=False)
        self.lambda_cost = check_non_negative("lambda_cost", lambda_cost)
        if latent_dim < 1 or hidden < 1 or vae_epochs < 1:
            raise CTPluginError("latent_dim, hidden and vae_epochs must be positive integers")
        self.latent_dim, self.hidden, self.vae_epochs, self.seed = latent_dim, hidden, vae_epochs, seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.vae: TabularVAE | None = None

    def cache_key(self, X: np.ndarray) -> str:
        """Key of the cached VAE: a hash of the training data and the VAE settings."""
        digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes())
        digest.update(f"{self.latent_dim}-{self.hidden}-{self.vae_epochs}-{self.seed}".encode())
        return digest.hexdigest()[:16]

    def fit(self, spec: DatasetSpec, device: torch.device | str = "cpu") -> None:
        """Train (or load from the cache) the VAE of ``spec``'s training data."""
        cache = (self.cache_dir or default_cache_dir()) / "vae"
        path = cache / f"{spec.name}-{self.cache_key(spec.X_train)}.pt"
        vae = TabularVAE(spec.n_features, self.latent_dim, self.hidden)
        if path.is_file():
            vae.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            vae = fit_vae(spec.X_train, self.latent_dim, self.hidden, self.vae_epochs, self.seed)
            cache.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda handle: torch.save(vae.state_dict(), handle))
        self.vae = vae.to(device).eval()
        for parameter in self.vae.parameters():
            parameter.requires_grad_(False)

    def _feasible(self, decoded: torch.Tensor, factuals: torch.Tensor, constraints: SearchConstraints):
        delta = constraints.mask_step(decoded - factuals)
        return constraints.clamp(factuals + delta, factuals)

    def search(
        self,
        model: torch.nn.Module,
        factuals: torch.Tensor,
        targets: torch.Tensor,
        constraints: SearchConstraints,
        *,
        tau: float,
        max_steps: int,
        epsilon: float,
        rng: torch.Generator | None = None,
    ) -> SearchResult:
        if self.vae is None:
            raise CTPluginError("the revise generator needs fit(spec) before search (it trains its VAE there)")
        check_search_settings(tau, max_steps, epsilon)
        self.vae.to(factuals.device)
        factuals = factuals.detach()
        n = len(factuals)
        rows = torch.arange(n, device=factuals.device)
        with torch.no_grad():
            z = self.vae.encode(factuals)[0]
        converged = torch.zeros(n, dtype=torch.bool, device=factuals.device)
        steps = torch.zeros(n, dtype=torch.long, device=factuals.device)
        probability = torch.zeros(n, device=factuals.device)
        final = factuals.clone()
        adversarial = factuals.clone()
        with frozen(model):
            for step in range(max_steps + 1):
                active = ~converged
                zz = z.detach().requires_grad_(step < max_steps)
                x = self._feasible(self.vae.decode(zz), factuals, constraints)
                shown = constraints.project_onehot(x.detach())
                with torch.no_grad():
                    p = torch.softmax(model(shown), dim=1)[rows, targets]
                probability = torch.where(active, p, probability)
                final = torch.where(active[:, None], shown, final)
                if step > 0:
                    within = (shown - factuals).abs().amax(dim=1) <= epsilon
                    adversarial = torch.where((active & within)[:, None], shown, adversarial)
                converged |= active & (p >= tau)
                active = ~converged
                if step == max_steps or not bool(active.any()):
                    break
                loss = F.cross_entropy(model(x), targets, reduction="none")
                loss = loss + self.lambda_cost * (x - factuals).abs().sum(dim=1)
                (grad,) = torch.autograd.grad(loss.sum(), zz)
                z = z - self.step_size * grad * active[:, None]
                steps += active.long()
        return SearchResult(final.detach(), converged, adversarial.detach(), steps, probability.detach())
