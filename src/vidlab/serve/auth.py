"""API keys and per-key rate limits of `vidlab serve --api-keys FILE`.

The key file holds one key per line, `[NAME] KEY [admin]`, where KEY is either the key itself
(at least 16 characters) or its hash `sha256:<64 hex digits>` (what `vidlab api-key` prints,
so the file need not hold any secret). Blank lines and `#` comments are ignored; a line with
only a key is named `key<line number>`. Keys are random tokens, so one SHA-256 is the right
hash (a slow password hash buys nothing against 256-bit secrets). Only hashes are kept in
memory; a presented key is hashed and compared with every known hash in constant time, and
neither keys nor hashes are ever logged: logs name the key's NAME.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from vidlab.errors import ConfigError

MIN_KEY_CHARS = 16
_HASHED = re.compile(r"sha256:([0-9a-f]{64})")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class ApiKey:
    """A known key: its name (what logs show), its SHA-256 digest and whether it is admin."""

    name: str
    digest: bytes
    admin: bool = False


def hash_key(key: str) -> str:
    """The `sha256:<hex>` line form of a key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class ApiKeys:
    """The keys a server accepts; `identify` tells which one a request presented."""

    def __init__(self, keys: list[ApiKey]):
        if not keys:
            raise ConfigError("no API keys given")
        self.keys = list(keys)

    @classmethod
    def load(cls, path: str | Path) -> ApiKeys:
        """Read a key file; `ConfigError` naming the file and line for anything malformed."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the API key file ({exc})", p) from None
        keys: list[ApiKey] = []
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if fields:
                keys.append(_parse_line(fields, number, p))
        names = [k.name for k in keys]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"the key name '{dup}' is used twice", p)
        if not keys:
            raise ConfigError("the API key file holds no key", p)
        return cls(keys)

    def identify(self, presented: str) -> ApiKey | None:
        """The key `presented` is, or None; the time taken does not depend on which key (if
        any) matches or on how much of it does."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def _parse_line(fields: list[str], number: int, path: Path) -> ApiKey:
    where = f"line {number}"
    admin = len(fields) == 3
    if admin and fields[2] != "admin":
        raise ConfigError(f"{where}: the third field may only be 'admin'", path)
    if len(fields) > 3:
        raise ConfigError(f"{where}: expected '[NAME] KEY [admin]'", path)
    name, secret = (f"key{number}", fields[0]) if len(fields) == 1 else fields[:2]
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a key name is 1-64 letters, digits or _.@-", path)
    hashed = _HASHED.fullmatch(secret)
    if hashed:
        return ApiKey(name, bytes.fromhex(hashed.group(1)), admin)
    if secret.startswith("sha256:"):
        raise ConfigError(f"{where}: a hash is 'sha256:' and 64 lower-case hex digits", path)
    if len(secret) < MIN_KEY_CHARS:  # the message never repeats the key itself
        raise ConfigError(f"{where}: a key needs at least {MIN_KEY_CHARS} characters "
                          "(make one with `vidlab api-key NAME`)", path)
    return ApiKey(name, hashlib.sha256(secret.encode()).digest(), admin)


class RateLimiter:
    """A token bucket per client: `rate` requests per second on average, bursts of `burst`.

    At most `max_clients` buckets are kept (least recently used ones are dropped: a dropped
    client starts again with a full bucket), so memory is bounded whoever calls.
    """

    def __init__(self, rate: float, burst: float, max_clients: int = 10_000):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst, self.max_clients = rate, float(burst), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, client: str, now: float | None = None) -> float:
        """Take one token for `client`: 0 when allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """`Retry-After` is whole seconds: round up, at least 1."""
        return str(max(1, math.ceil(wait_s)))
