"""Feature-classifier baselines on the CNN's pooled features: logistic regression, SVM,
k-nearest neighbours and a decision tree (scikit-learn), trained on the same training split
and scored on the same test cases as the CNN, so a site sees what the CNN's own head adds
over simple classifiers on what its backbone sees. SMOTE (imbalanced-learn) can oversample
the minority classes of the training features first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline as make_resampling_pipeline
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

logger = logging.getLogger(__name__)


def _classifiers(seed: int, neighbours: int, folds: int) -> dict[str, Callable[[], object]]:
    return {
        "logistic regression": lambda: LogisticRegression(
            max_iter=5000, class_weight="balanced", random_state=seed
        ),
        # SVMs give margins, not probabilities: Platt-calibrated by cross-validation
        "SVM (RBF)": lambda: CalibratedClassifierCV(
            SVC(class_weight="balanced", random_state=seed), cv=folds, ensemble=False
        ),
        "k-nearest neighbours": lambda: KNeighborsClassifier(n_neighbors=neighbours),
        "decision tree": lambda: DecisionTreeClassifier(
            max_depth=5, class_weight="balanced", random_state=seed
        ),
    }


@dataclass(frozen=True)
class BaselineScores:
    name: str
    probabilities: np.ndarray  # (test cases, classes)
    smote: bool


def fit_baselines(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    classes: int,
    smote: bool = False,
    seed: int = 0,
) -> list[BaselineScores]:
    """Each baseline's class probabilities for the test features (classes the training
    split lacks get probability 0)."""
    present = np.unique(train_labels)
    if present.size < 2:
        raise ValueError("the baselines need at least two classes among the training cases")
    counts = np.bincount(train_labels)
    smallest = int(counts[counts > 0].min())
    use_smote = smote and smallest >= 2
    if smote and not use_smote:
        logger.warning("SMOTE left out: a class has a single training case")
    neighbours = max(1, min(5, len(train_labels) - 1))
    results = []
    folds = max(2, min(3, smallest))
    for name, build in _classifiers(seed, neighbours, folds).items():
        if name.startswith("SVM") and smallest < 2:
            logger.warning("SVM left out: calibration needs two training cases of each class")
            continue
        if use_smote:
            resampler = SMOTE(k_neighbors=min(5, smallest - 1), random_state=seed)
            model = make_resampling_pipeline(StandardScaler(), resampler, build())
        else:
            model = make_pipeline(StandardScaler(), build())
        model.fit(train_features, train_labels)
        known = model.predict_proba(test_features)
        probabilities = np.zeros((len(test_features), classes), dtype=np.float64)
        probabilities[:, present] = known
        results.append(BaselineScores(name, probabilities, use_smote))
    return results
