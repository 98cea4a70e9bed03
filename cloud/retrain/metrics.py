"""Accuracy, confusion matrix and per-class precision/recall, the figures model.json records."""

from __future__ import annotations

import numpy as np

from common.bundle import ClassMetrics


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    return float(np.mean(y_true == y_pred)) if len(y_true) else None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class(matrix: np.ndarray, labels: list[str]) -> dict[str, ClassMetrics]:
    result = {}
    for i, label in enumerate(labels):
        true_positive = matrix[i, i]
        predicted, actual = matrix[:, i].sum(), matrix[i].sum()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[label] = ClassMetrics(
            precision=round(float(precision), 4),
            recall=round(float(recall), 4),
            f1=round(float(f1), 4),
            support=int(actual),
        )
    return result
