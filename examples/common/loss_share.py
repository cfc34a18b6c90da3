"""The paper's Figure 4: how the total loss is shared among samples, easiest first.

For a trained net's logits, each positive class logit's loss ℓ⁺ and each negative one's ℓ⁻ are
evaluated at several focusing parameters γ with the project's numpy core (focal_terms); sorted
ascending and accumulated, they give the share of the total loss carried by the easiest
fraction of samples. At γ = 0 (cross-entropy) the many easy negatives carry a visible share; at
γ = 2 nearly all of it sits in the hardest few. For a softmax net the samples are cells, each
with its softmax focal loss (softmax_core.softmax_focal_terms): positives the cells of a digit,
negatives the background cells.
"""
from typing import Dict, Sequence

import numpy as np

from focal_loss_layer.core import focal_terms
from focal_loss_layer.softmax_core import softmax_focal_terms

GAMMAS = (0.0, 0.5, 1.0, 2.0)
# Fractions of negatives, easiest first, whose loss share is reported in the table.
EASIEST_FRACTIONS = (0.5, 0.9, 0.99)
CURVE_POINTS = 201   # every 0.5 % of the samples


def cumulative_share(losses: np.ndarray) -> np.ndarray:
    """Sorted ascending, cumulated and divided by the total: (M,) -> (M,), ending at 1."""
    cumulative = np.cumsum(np.sort(losses.astype(np.float64)))
    return cumulative / cumulative[-1]


def share_of_easiest(share: np.ndarray, fraction: float) -> float:
    """Share of the total loss carried by the easiest `fraction` of the samples."""
    count = int(np.floor(fraction * len(share)))
    return float(share[count - 1]) if count else 0.0


def loss_share_analysis(scores: np.ndarray, positives: np.ndarray,
                        gammas: Sequence[float] = GAMMAS) -> Dict:
    """scores, positives: (M, C) logits and bool targets of the non-ignored cells.

    Returns {"gammas": [...], "positives"/"negatives": {"count": n, "curves": {γ: [share at
    CURVE_POINTS evenly spaced fractions]}, "easiest": {γ: {fraction: share}}}}."""
    logits = scores.astype(np.float64)

    def losses(chosen, gamma, positive):
        pos_loss, neg_loss, _, _ = focal_terms(logits[chosen], gamma)
        return pos_loss if positive else neg_loss
    return _analysis(positives, losses, gammas)


def softmax_loss_share_analysis(logits: np.ndarray, classes: np.ndarray,
                                gammas: Sequence[float] = GAMMAS) -> Dict:
    """logits (M, C) and classes (M,) in 0..C−1 of the non-ignored cells of a softmax net: each
    cell's softmax focal loss; positives are the cells of classes 1..C−1, negatives class 0.
    Returns loss_share_analysis's dictionary."""
    logits = logits.astype(np.float64)

    def losses(chosen, gamma, positive):
        return softmax_focal_terms(logits[chosen], classes[chosen], gamma)[0]
    return _analysis(classes > 0, losses, gammas)


def _analysis(positives: np.ndarray, losses, gammas) -> Dict:
    """losses(chosen mask, γ, positive) -> the chosen samples' losses; see loss_share_analysis."""
    result = {"gammas": list(gammas), "fractions": np.linspace(0, 1, CURVE_POINTS).tolist()}
    for kind, chosen in (("positives", positives), ("negatives", ~positives)):
        curves, easiest = {}, {}
        for gamma in gammas:
            share = cumulative_share(losses(chosen, gamma, kind == "positives"))
            points = np.linspace(0, len(share), CURVE_POINTS).astype(int)
            curves[str(gamma)] = np.concatenate([[0.0], share])[points].tolist()
            easiest[str(gamma)] = {str(f): share_of_easiest(share, f) for f in EASIEST_FRACTIONS}
        result[kind] = {"count": int(np.count_nonzero(chosen)), "curves": curves,
                        "easiest": easiest}
    return result
