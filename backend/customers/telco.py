"""The IBM Telco customer-churn data set: loading and feature engineering.

Used to validate the churn-risk modelling on real customers (``benchmarks/customers``).
Feature engineering: tenure buckets, charges per month of tenure and their gap to the
monthly charge, the number of services taken, contract × payment-method interactions, plus
the one-hot encoded raw columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TELCO_FILE = Path("telco_churn") / "telco_churn.csv"
SERVICES = (
    "PhoneService",
    "MultipleLines",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
CATEGORICAL = (
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
)


def load_telco(data_sets: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The raw columns (customer id dropped) and the churn labels (1 = churned).

    Raises:
        FileNotFoundError: ``data_sets/telco_churn/telco_churn.csv`` does not exist.
    """
    path = data_sets / TELCO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Telco churn data not found at {path}")
    frame = pd.read_csv(path)
    labels = (frame.pop("Churn") == "Yes").to_numpy(dtype=np.int64)
    frame = frame.drop(columns=["customerID"])
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce").fillna(0.0)
    return frame, labels


def baseline_features(frame: pd.DataFrame) -> pd.DataFrame:
    """One-hot categorical columns plus the numeric ones, as a plain model would see them."""
    numeric = frame[["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]].astype(float)
    dummies = pd.get_dummies(frame[list(CATEGORICAL)], drop_first=True, dtype=float)
    return pd.concat([numeric, dummies], axis=1)


def engineered_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The baseline plus the engineered features described in the module docstring."""
    out = baseline_features(frame)
    tenure = frame["tenure"].astype(float)
    monthly = frame["MonthlyCharges"].astype(float)
    total = frame["TotalCharges"].astype(float)
    out["log_tenure"] = np.log1p(tenure)
    out["charges_per_tenure_month"] = total / tenure.clip(lower=1)
    out["charge_gap"] = monthly - out["charges_per_tenure_month"]
    out["monthly_x_tenure"] = monthly * out["log_tenure"]
    out["services"] = sum((frame[s] == "Yes").astype(float) for s in SERVICES)
    out["internet_no_support"] = (
        (frame["InternetService"] != "No")
        & (frame["TechSupport"] == "No")
        & (frame["OnlineSecurity"] == "No")
    ).astype(float)
    buckets = pd.cut(tenure, [-1, 6, 12, 24, 48, 60, 1000], labels=False)
    out = pd.concat([out, pd.get_dummies(buckets, prefix="tenure_bucket", dtype=float)], axis=1)
    combo = frame["Contract"] + "|" + frame["PaymentMethod"]
    out = pd.concat([out, pd.get_dummies(combo, prefix="contract_payment", dtype=float)], axis=1)
    fiber_monthly = (frame["InternetService"] == "Fiber optic") & (
        frame["Contract"] == "Month-to-month"
    )
    out["fiber_month_to_month"] = fiber_monthly.astype(float)
    return out
