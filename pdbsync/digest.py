"""blake2b, without importing :mod:`hashlib` on every run.

``import hashlib`` loads OpenSSL's bindings (a cost every run's start would pay), yet
hashlib's own ``blake2b`` never comes from OpenSSL: it is CPython's built-in
``_blake2``. The config cache and shard assignment take it from there directly.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # a Python without CPython's module layout
    from hashlib import blake2b

__all__ = ["blake2b"]
