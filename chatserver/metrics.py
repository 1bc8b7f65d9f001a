"""Prometheus metrics of one process, in a registry of its own per app."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.queue_depth = Gauge("queue_depth", "Jobs waiting, by queue (plus delayed and dead)",
                                 ["queue"], registry=self.registry)
        self.jobs = Gauge("jobs_total", "Jobs handled by this process since start, by outcome",
                          ["queue", "outcome"], registry=self.registry)
        self.rate_limited = Counter("rate_limited_total", "Requests refused with 429 by a rate limit",
                                    ["limit"], registry=self.registry)
        self.ai_tokens = Counter("ai_tokens_total", "Tokens of AI answers as the model server counted them, "
                                 "by model and kind (prompt or completion)", ["model", "kind"],
                                 registry=self.registry)
        self.tool_calls = Counter("tool_calls_total", "Tool calls models made, by tool id and outcome "
                                  "(done or failed)", ["tool", "outcome"], registry=self.registry)
        self.tool_seconds = Histogram("tool_call_duration_seconds", "Time a tool call took, by tool id",
                                      ["tool"], registry=self.registry,
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.websockets = Gauge("websockets_open", "WebSocket connections open in this process",
                                registry=self.registry)
        # (method, route, status) -> its request counter and latency histogram; as many as the metrics' own labels
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def count_tokens(self, model: str, usage: dict) -> None:
        for kind in ("prompt", "completion"):
            if isinstance(usage.get(f"{kind}_tokens"), int):
                self.ai_tokens.labels(model, kind).inc(usage[f"{kind}_tokens"])

    def count_tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        labels = (request.method, route_label(request), status)
        children = self._children.get(labels)
        if children is None:
            # labels() checks and locks each time: a tenth of a small request's cost; its children never change
            method, route, _ = labels
            children = self._children[labels] = (self.requests.labels(method, route, str(status)),
                                                 self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)


def route_label(request: web.Request) -> str:
    """The route template, never the raw path, so ids do not explode the label set."""
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        return "unmatched"
    return resource.canonical
