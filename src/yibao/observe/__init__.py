"""What operators watch: the request id and structured logs (logs.py), Prometheus metrics and the ASGI middleware
that times and counts every request (metrics.py). An adapter: imports nothing of the platform above it, so services
may record a metric as they may log a line."""
