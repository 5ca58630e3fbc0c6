"""Remaining-useful-life sequence models: windows, network, training and evaluation."""
