"""Feature-based models: tsfresh features chosen on training data, gradient boosting on them."""
