"""Models on one row of readings per prediction (AI4I-style machine snapshots)."""
