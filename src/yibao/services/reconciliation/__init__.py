"""Reconciliation with the payment institutions (docs/reconciliation.md): each day's statement matched to the platform's
cash legs (runs.py), each difference resolved by an operator with a reason (resolutions.py). Owns the
``reconciliation_*`` tables; the matching rules are pure, in domain/reconciliation.py."""
