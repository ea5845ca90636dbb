"""Connecting to Ray: a local instance started for the run, or an existing cluster."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import ray

from rnncore.errors import ArgumentError, RnnCoreError

__all__ = ["CONNECT_TIMEOUT", "connect", "disconnect"]

CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster's address before giving up


def _host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``ray://host:port`` -> ``(host, port)``."""
    parts = urlsplit(address if "://" in address else "ray://" + address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ArgumentError(f"ray address must be HOST:PORT or ray://HOST:PORT, got {address!r}")
    return parts.hostname, port


def connect(
    address: str | None = None, num_cpus: int | None = None, timeout: float = CONNECT_TIMEOUT
) -> bool:
    """Make sure Ray is running; returns whether this call started or joined it
    (and :func:`disconnect` should end it).

    Args:
        address: an existing cluster (``HOST:PORT`` of its head, or
            ``ray://HOST:PORT`` for Ray Client); None starts a local instance.
        num_cpus: CPUs of a local instance (None: all of the machine's).
        timeout: seconds to reach ``address``; an unreachable address is an
            :class:`ArgumentError` after at most this long, not a hang.
    """
    if address is not None:
        _check_reachable(address, timeout)
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as err:  # Ray raises bare Exception, RuntimeError, ConnectionError...
        where = "a local Ray instance" if address is None else f"Ray at {address!r}"
        raise RnnCoreError(f"could not start {where}: {err}") from None
    return True


def _check_reachable(address: str, timeout: float) -> None:
    """An :class:`ArgumentError` unless ``address`` accepts a TCP connection within ``timeout``."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ArgumentError(
            f"ray address {address!r}: cannot reach {host}:{port} within {timeout:g} s ({err})"
        ) from None


def disconnect(started: bool) -> None:
    """End the Ray session if :func:`connect` began it."""
    if started and ray.is_initialized():
        ray.shutdown()
