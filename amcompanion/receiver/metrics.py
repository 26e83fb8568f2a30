"""The receiver's own metrics, in a registry of its own (several receivers can live in one test process)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "amcompanion_webhook_requests", "Webhook requests by policy and HTTP status", ["policy", "code"], registry=r
        )
        self.alerts_received = Counter(
            "amcompanion_alerts_received", "Alerts received, by status in the payload", ["status"], registry=r
        )
        self.duplicates = Counter(
            "amcompanion_alerts_duplicate", "Alerts received again (replays, HA peers, resends)", registry=r
        )
        self.notifications = Counter(
            "amcompanion_notifications",
            "Delivery attempts by channel and outcome (sent, retry, failed)",
            ["channel", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "amcompanion_notification_retries", "Retries scheduled, by channel", ["channel"], registry=r
        )
        self.digests = Counter(
            "amcompanion_digests", "Digest messages sent instead of one message per alert", ["channel"], registry=r
        )
        self.queue_depth = Gauge("amcompanion_outbox_queued", "Notifications waiting in the outbox", registry=r)
        self.escalations = Counter(
            "amcompanion_escalation_steps", "Escalation steps taken, by reason", ["reason"], registry=r
        )
        self.acks = Counter("amcompanion_acks", "Acknowledgements, by how they came", ["via"], registry=r)
        self.latency = Histogram(
            "amcompanion_delivery_latency_seconds",
            "From queued to delivered, by channel",
            ["channel"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.auth_failures = Counter(
            "amcompanion_auth_failures", "Requests refused for a missing or wrong credential", ["endpoint"], registry=r
        )
        self.http_requests = Counter(
            "amcompanion_http_requests",
            "Every HTTP answer, by route (its pattern, '' when none matched) and status",
            ["route", "code"],
            registry=r,
        )
        # What the self-monitoring rules (generated/prometheus/rules/amcompanion.yml) watch.
        self.channel_up = Gauge(
            "amcompanion_channel_up",
            "1 while the channel delivers, 0 while its deliveries fail (its circuit breaker is open)",
            ["channel"],
            registry=r,
        )
        self.oldest_queued = Gauge(
            "amcompanion_outbox_oldest_queued_seconds", "Age of the oldest notification waiting (0: none)", registry=r
        )
        self.escalation_overdue = Gauge(
            "amcompanion_escalation_overdue_seconds",
            "How far past due the most overdue escalation step of a firing alert is (0: none overdue)",
            registry=r,
        )
        self.template_errors = Counter(
            "amcompanion_template_errors",
            "Messages sent with the default template because the channel's own failed to render",
            ["channel"],
            registry=r,
        )

        # Children of the counters every webhook request touches, looked up once: labels() takes a lock
        # and validates the label values on each call.
        self._webhook_children: dict[tuple[str, int], Counter] = {}
        self.received_by_status = {status: self.alerts_received.labels(status) for status in ("firing", "resolved")}

    def webhook_request(self, policy: str, code: int) -> None:
        child = self._webhook_children.get((policy, code))
        if child is None:
            child = self._webhook_children[(policy, code)] = self.requests.labels(policy, str(code))
        child.inc()
