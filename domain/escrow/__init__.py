"""Escrow custody of prepaid funds (资金存管)."""
