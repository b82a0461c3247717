"""Small shared helpers (argument validation, atomic file writes)."""
