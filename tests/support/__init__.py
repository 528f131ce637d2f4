"""Helpers shared by the tests (no tests here): worlds to set up, HTTP and browser steps, the loopback
servers registered as plugins in tests/conftest.py. Test modules import from here, never from each other."""
