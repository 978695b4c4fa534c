"""The linear surrogates of KernelSHAP and LIME: coalitions [n, F] -> scores, one fit per picture."""
from __future__ import annotations

import torch


def weighted_least_squares(z: torch.Tensor, scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Coefficients [B, F] of ``scores[:, b] ~ z @ c_b + intercept_b`` minimising the weighted squares.

    ``z`` [n, F] 0/1, ``scores`` [n, B], ``weights`` [n] (shared) or [n, B]. Solved in float64
    by least squares on sqrt(weight)-scaled rows, so a rank-deficient design (fewer distinct
    coalitions than features) gives the minimum-norm solution instead of failing.
    """
    design = torch.cat([z.double(), torch.ones(len(z), 1, dtype=torch.float64, device=z.device)], 1)
    root = weights.double().clamp(min=0).sqrt()
    if root.dim() == 1:
        solution = torch.linalg.lstsq(design * root[:, None], scores.double() * root[:, None],
                                      driver="gelsd" if design.device.type == "cpu" else None).solution
        return solution[:-1].T
    scaled = design[None] * root.T[:, :, None]                                  # [B, n, F + 1]
    rhs = (scores.double() * root).T[:, :, None]                                # [B, n, 1]
    solution = torch.linalg.lstsq(scaled, rhs, driver="gelsd" if design.device.type == "cpu" else None).solution
    return solution[:, :-1, 0]


def lasso(z: torch.Tensor, scores: torch.Tensor, weights: torch.Tensor, alpha: float,
          relative: bool = False) -> torch.Tensor:
    """Coefficients [B, F] of scikit-learn's weighted ``Lasso(alpha)`` (with intercept) per picture,
    fitted on float32 copies as Captum's ``SkLearnLasso`` does; ``relative``: alpha times the
    standard deviation of that picture's scores."""
    from sklearn.linear_model import Lasso      # imported here: `import netgaze` does not pay for it

    design = z.float().cpu().numpy()
    result = []
    for b in range(scores.shape[1]):
        column = scores[:, b].float().cpu().numpy()
        strength = alpha * float(column.std()) if relative else alpha
        if strength == 0:
            result.append(torch.zeros(design.shape[1], dtype=torch.float64))
            continue
        fit = Lasso(alpha=strength).fit(design, column,
                                       sample_weight=weights[:, b].float().cpu().numpy())
        result.append(torch.as_tensor(fit.coef_, dtype=torch.float64))
    return torch.stack(result).to(z.device)
