"""Insured people and what they hold: enrolment and look-ups, real-name and real-person identity, cards
and e-cards, family links (guardians, mutual aid), cross-region filings, e-card bindings to payment institutions."""
