"""Requests served by the cluster: specs, synthetic arrivals, trace files."""

from testbed.requests.arrivals import LengthDist, poisson_requests
from testbed.requests.spec import RequestSpec
from testbed.requests.trace_file import read_request_trace

__all__ = ["LengthDist", "RequestSpec", "poisson_requests", "read_request_trace"]
