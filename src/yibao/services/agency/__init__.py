"""What the agency admits and configures: designated institutions, pooling regions' own accounts, the
policy files in force, payment institutions' admission, and how the platform reaches each of them
(connector configuration and the one connector registry, credit banks included)."""
