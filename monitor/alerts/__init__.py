"""Alerts to on-call crews: rules as data, a durable outbox, and the sinks that deliver it (MQTT, robots,
webhook, Alertmanager), with one-tap acknowledgement links."""
