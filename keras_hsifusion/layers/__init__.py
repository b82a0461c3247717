"""Reusable, serializable layers of the zoo's models."""
