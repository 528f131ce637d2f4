"""Cryptography adapters: PII encryption at rest, keyed lookups, masking; signatures (payments)."""
