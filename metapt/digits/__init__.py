"""Digits domain."""
