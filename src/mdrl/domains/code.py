"""Being written (placeholder until its helper lands it)."""
