"""Loaders for the public data sets the models are benchmarked on."""
