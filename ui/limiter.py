"""Failed sign-ins, counted in bounded memory, with an attempt reserved before the password check.

``SignIn`` (``ui.auth``) counts failures under three keys, each with its own limit in a sliding
window of 15 minutes (docs/reliability.md, "Attacks tried"):

- the account *and* the address together: ``ui.login_attempts`` (10). Guessing one account's
  password from one place stops there, and it locks no one else out;
- the address alone: 3 × that, so one machine cannot spray guesses over many accounts;
- the account alone: 10 × that, so guesses from many addresses at one account still stop, while
  one person typing wrong passwords cannot lock a teacher out from their own machine.

An attempt is reserved (counted as a failure) on the account's two keys *before* the password
is checked, atomically, and given back when the password was right: parallel guesses at one
account cannot slip past the limit while the first ones are still being checked. The address
alone counts failures only once they are known (``check`` in ``reserve``): a class behind one
address (a school's NAT) signing in at once is many right passwords in flight, not failures
(50 at once were refused 20 times when the address counted them in flight).

Memory is bounded whatever a client sends: user names longer than any valid one are cut to
``MAX_NAME`` characters, a key keeps at most its limit of timestamps, expired keys are dropped,
and past ``max_keys`` keys the least recently used go first. A refused (429) attempt stores
nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

WINDOW_S = 15 * 60
MAX_NAME = 64  # the longest valid user name (tutor.accounts.check_username)
MAX_ADDRESS = 64
MAX_KEYS = 20_000
ADDRESS_FACTOR = 3
ACCOUNT_FACTOR = 10


@dataclass(frozen=True)
class Key:
    """One counter and the failures it allows in the window."""

    name: str
    limit: int


def sign_in_keys(username: str, address: str, limit: int) -> tuple[Key, ...]:
    """The counters one sign-in attempt touches: (account, address), address, account."""
    user = username[:MAX_NAME].lower()
    addr = address[:MAX_ADDRESS]
    return (
        Key(f"pair:{user}\x00{addr}", limit),
        Key(f"addr:{addr}", limit * ADDRESS_FACTOR),
        Key(f"user:{user}", limit * ACCOUNT_FACTOR),
    )


class FailureLimiter:
    """Failed sign-ins per key in a sliding window, in bounded memory (see the module doc)."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, *, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._fails: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._fails)

    def keys_for(self, username: str, address: str) -> tuple[Key, ...]:
        return sign_in_keys(username, address, self.limit)

    def _recent(self, name: str, now: float) -> list[float]:
        """The key's failures still in the window (an expired key is dropped)."""
        q = self._fails.get(name)
        if q is None:
            return []
        while q and now - q[0] > self.window_s:
            q.pop(0)
        if not q:
            del self._fails[name]
        return q

    def _wait(self, keys: Sequence[Key], now: float) -> float:
        waits = [
            self.window_s - (now - q[0])
            for k in keys
            if len(q := self._recent(k.name, now)) >= k.limit
        ]
        return max(waits, default=0.0)

    def retry_after(self, *keys: Key) -> float:
        """Seconds until every key may try again (0 when none is blocked)."""
        with self._lock:
            return self._wait(keys, time.monotonic())

    def reserve(self, *keys: Key, check: Sequence[Key] = ()) -> tuple[float, float]:
        """Count an attempt on every key before it is checked: ``(0, stamp)``; or, when a key
        (or one of ``check``, which are only looked at) is at its limit, ``(seconds to wait,
        0)`` and nothing is counted or stored."""
        with self._lock:
            now = time.monotonic()
            wait = self._wait([*keys, *check], now)
            if wait > 0:
                return wait, 0.0
            for k in keys:
                q = self._fails.get(k.name)
                if q is None:
                    q = self._fails[k.name] = []
                q.append(now)
                del q[: max(0, len(q) - k.limit)]
                self._fails.move_to_end(k.name)
            self._evict(now)
            return 0.0, now

    def release(self, stamp: float, *keys: Key) -> None:
        """Give back a reserved attempt (the password was right)."""
        with self._lock:
            for k in keys:
                q = self._fails.get(k.name)
                if q is not None and stamp in q:
                    q.remove(stamp)
                    if not q:
                        del self._fails[k.name]

    def fail(self, *keys: Key) -> None:
        """Count a failure that was not reserved."""
        self.reserve(*keys)

    def clear(self, key: Key) -> None:
        with self._lock:
            self._fails.pop(key.name, None)

    def _evict(self, now: float) -> None:
        """Past ``max_keys``, the least recently used keys go (expired ones are among them)."""
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)

    def size_bytes(self) -> int:
        """Roughly the memory the counters hold (keys and timestamps), for tests and logs."""
        import sys

        with self._lock:
            return sum(
                sys.getsizeof(k) + sys.getsizeof(q) + 24 * len(q) for k, q in self._fails.items()
            )
