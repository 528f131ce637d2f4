import os

from hypothesis import HealthCheck, settings

# CI runs more examples; a developer's `make test` stays quick.
settings.register_profile("ci", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
