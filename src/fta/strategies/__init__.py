"""Strategies domain."""
