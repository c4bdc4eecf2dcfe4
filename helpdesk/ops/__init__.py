"""Operating CareDesk: the Prometheus ``/metrics`` endpoint and the small HTTP server of a
``caredesk worker`` (health, readiness and metrics)."""
