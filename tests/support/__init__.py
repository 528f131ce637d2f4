"""Helpers shared by the tests (no tests here). Test modules import from here, never from each other.

- world: seed() — a region's institutions and three insured people;
- identity: people, cards, e-cards, payment institutions, bindings and family links on top of seed();
- payments, credit: a holder bound to a SANDBOX institution (or the sandbox bank), paying; PlatformServer;
- settlement: visits opened and settled through the services;
- callbacks: a hospital's callback endpoint on loopback;
- api: steps over the HTTP API; pages: steps through the pages (browser and forms);
- code128: a barcode read back; strategies: hypothesis strategies; db: PG_URL and the settable Clock;
- kill_child: the payment process tests/services/payments/test_payment_kill.py kills midway;
- channels, face: pytest plugins (``pytest_plugins`` in tests/conftest.py) — the sandbox payment
  institutions and the sandbox face verifier as real servers on loopback.
"""
