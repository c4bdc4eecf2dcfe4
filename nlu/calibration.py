"""Confidence calibration, data-chosen fallback thresholds and out-of-scope scoring.

Pure functions over arrays, shared by the intent classifier (which produces held-out scores at
training time), the fallback (which picks its thresholds from them) and the evaluation (which reports
the expected calibration error).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ECE_BINS = 15


def softmax(scores: np.ndarray) -> np.ndarray:
    """Return the row-wise softmax of a 2-D score array (a new array)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS
) -> float:
    """Return the expected calibration error: the support-weighted mean gap between the mean top
    confidence and the accuracy inside ``bins`` equal-width confidence bins."""
    confidence = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if not len(confidence):
        return 0.0
    # Bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin.
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            total += members.sum() * abs(confidence[members].mean() - hits[members].mean())
    return float(total / len(confidence))


def fit_temperature(
    scores: np.ndarray,
    truth: np.ndarray,
    prior_temperature: float = 5.0,
    prior_strength: float = 20.0,
    bounds: tuple[float, float] = (0.5, 50.0),
) -> float:
    """Return the softmax temperature (a multiplier of the raw scores) with the least held-out log
    loss. A weak log-normal prior towards ``prior_temperature`` keeps tiny held-out sets (all
    correct, say) from pushing it to a bound; its weight fades as the held-out set grows."""
    from scipy.optimize import minimize_scalar

    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=int)
    if len(truth) == 0:
        return 1.0
    prior_log = np.log(prior_temperature)
    prior_weight = prior_strength / len(truth)
    rows = np.arange(len(truth))

    def log_loss(log_temperature: float) -> float:
        """Mean held-out log loss at this temperature, plus the prior."""
        scaled = scores * np.exp(log_temperature)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        penalty = prior_weight * (log_temperature - prior_log) ** 2
        return float(np.mean(log_norm - scaled[rows, truth]) + penalty)

    best = minimize_scalar(log_loss, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(best.x))


def lowest_threshold_for_precision(
    confidences: Sequence[float], correct: Sequence[bool], target: float = 0.97, min_kept: int = 1
) -> float:
    """Return the lowest confidence threshold whose kept answers (confidence >= threshold) are at
    least ``target`` precise; 0.0 when every answer together already is. When no threshold reaches
    the target, return the one with the best precision among those keeping ``min_kept`` answers."""
    confidence = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=bool)
    if not len(confidence):
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    sorted_conf, sorted_hits = confidence[order], hits[order]
    kept = np.arange(1, len(order) + 1)
    precision = np.cumsum(sorted_hits) / kept
    # Only cut between distinct confidences: ties are kept or dropped together.
    boundary = np.append(sorted_conf[1:] < sorted_conf[:-1], True)
    candidates = np.flatnonzero(boundary & (kept >= min(min_kept, len(order))))
    good = candidates[precision[candidates] >= target]
    if len(good):
        last = good[-1]  # keeps the most answers, i.e. the lowest threshold
        return 0.0 if last == len(order) - 1 else float(sorted_conf[last])
    best = candidates[np.argmax(precision[candidates])]
    return float(sorted_conf[best])


def folds_with_held_out_intents(
    labels: Sequence[str], n_folds: int, intent_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split examples for cross-validated calibration and pseudo-out-of-scope scoring.

    Returns ``(fold, held_out_intent_fold)``: ``fold[i]`` is the fold example i is scored in, and
    ``held_out_intent_fold[i]`` the fold whose model never sees example i's intent (-1: none). Fold k's
    model trains on the examples outside fold k whose intent is not held out in fold k; an example of
    fold k whose intent is held out there is scored as out of scope (an intent the model never saw),
    every other example of fold k as an ordinary held-out answer. Folds are stratified by intent and
    the held-out intent groups are disjoint, each ``intent_share`` of the intents (none with < 4).
    """
    rng = np.random.default_rng(seed)
    label_array = np.asarray(labels)
    intents = sorted(set(label_array.tolist()))
    fold = np.zeros(len(label_array), dtype=int)
    for intent in intents:
        members = np.flatnonzero(label_array == intent)
        rng.shuffle(members)
        start = int(rng.integers(n_folds))  # rotate so small intents do not all start in fold 0
        fold[members] = (np.arange(len(members)) + start) % n_folds
    held_out = np.full(len(label_array), -1, dtype=int)
    per_fold = int(round(len(intents) * intent_share))
    if len(intents) >= 4 and per_fold >= 1:
        shuffled = list(rng.permutation(intents))
        for k in range(n_folds):
            for intent in shuffled[k * per_fold : (k + 1) * per_fold]:
                held_out[label_array == intent] = k
    return fold, held_out


#: What the out-of-scope scorer can read: four views of the class scores (``confidence_features``),
#: the nearest-example similarity, and the word coverage of the message by its predicted intent
#: (``nlu.coverage``).
SCORE_FEATURES = ("log_confidence", "top_score", "margin", "energy")
OUT_OF_SCOPE_FEATURES = (*SCORE_FEATURES, "similarity", "unknown", "covered", "association")
#: the inputs of scorers saved before the choice was configurable (in ``novelty_features`` order)
LEGACY_OUT_OF_SCOPE_FEATURES = (*SCORE_FEATURES, "similarity")


def confidence_features(scores: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Return ``SCORE_FEATURES`` of raw class-score rows by name: the calibrated top probability
    (log), the top raw score, its margin over the runner-up and the log-sum-exp energy."""
    scores = np.asarray(scores, dtype=np.float64)
    columns = novelty_features(scores, temperature, np.zeros(len(scores)))
    return {name: columns[:, i] for i, name in enumerate(SCORE_FEATURES)}


def novelty_features(scores: np.ndarray, temperature: float, similarity: np.ndarray) -> np.ndarray:
    """Return per-row out-of-scope features from raw class scores: the calibrated top probability
    (log), the top raw score, the margin to the runner-up, the log-sum-exp energy, and the cosine
    similarity to the nearest training example (word n-grams)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] < 2:
        top = scores[:, 0]
        return np.column_stack([np.zeros_like(top), top, np.ones_like(top), top, similarity])
    part = -np.partition(-scores, 1, axis=1)[:, :2]
    scaled = scores * temperature
    peak = scaled.max(axis=1)
    log_norm = peak + np.log(np.exp(scaled - peak[:, None]).sum(axis=1))
    log_top = scaled.max(axis=1) - log_norm
    return np.column_stack([log_top, part[:, 0], part[:, 0] - part[:, 1], log_norm / temperature, similarity])


def row_normalized(matrix):
    """Return a CSR copy of ``matrix`` with unit-length rows (empty rows stay empty)."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms).astype(np.float32) @ matrix)


def nearest_similarity(queries, references, chunk: int = 512) -> np.ndarray:
    """Return, per row of ``queries``, its largest dot product with a row of ``references`` (both
    row-normalised CSR: cosine similarity), computed in chunks to bound memory."""
    best = np.zeros(queries.shape[0], dtype=np.float64)
    if references.shape[0] == 0:
        return best
    transposed = references.T.tocsc()
    for start in range(0, queries.shape[0], chunk):
        products = queries[start : start + chunk] @ transposed
        best[start : start + chunk] = products.max(axis=1).toarray().ravel()
    return best
