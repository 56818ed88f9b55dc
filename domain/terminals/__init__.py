"""Terminals at work: charges waiting for a card tap, reader taps, DESFire proofs, UID limits."""
