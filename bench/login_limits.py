"""What the brute-force limiter adds to a successful sign-in.

Runs the API's sign-in (`routes.auth._authenticate`: the user's lookup, the argon2 check, the
token) against SecantusDB (its own process, as in `make dev`), alternately with the real
limiter (two counted attempts and their give-back in `rate_limits`) and with none, and the
limiter's three MongoDB calls alone; prints the median and p95 of each and the ratio of the
sign-ins. Alternating keeps all under the same load; the argon2 check (tens of ms, more on a
busy machine) varies more than the limiter costs, so the limiter alone is the exact figure.

    .venv/bin/python bench/login_limits.py [--rounds 200]
"""

import argparse
import secrets
import statistics
import subprocess
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

from hlsforge_dev.loopback import free_port, secantus_command, wait_for_port
from pymongo import MongoClient

from transcode_api.context import AppContext
from transcode_api.models import LoginRequest
from transcode_api.ratelimits import Limit, RateLimits, Taken, login_limits
from transcode_api.repository import Repository
from transcode_api.routes.auth import _authenticate
from transcode_api.security import TokenIssuer, hash_password
from transcode_api.settings import ApiSettings

PASSWORD = "bench password 1"


class NoLimits:
    """The limiter left out: what sign-in cost before it."""

    def take(self, limit: Limit, subject: str) -> Taken:
        return Taken(counter_id="")

    def give_back(self, *taken: Taken) -> None:
        pass


def timed(call: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    call(*args)
    return (time.perf_counter() - started) * 1000


def summary(name: str, samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"{name:<16} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200, help="sign-ins of each kind")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(secantus_command(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port)
        uri = f"mongodb://127.0.0.1:{port}/"
        settings = ApiSettings(jwt_secret=secrets.token_urlsafe(48), mongodb_uri=uri)
        mongo: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
        repo = Repository(mongo, "bench")
        limits = RateLimits(repo.db["rate_limits"])
        repo.ensure_indexes()
        limits.ensure_indexes()
        repo.create_user(email="bench@example.com", password_hash=hash_password(PASSWORD),
                         name=None)  # fmt: skip
        body = LoginRequest(email="bench@example.com", password=PASSWORD)
        tokens = TokenIssuer.from_settings(settings)

        def context(limiter: object) -> AppContext:
            return cast(AppContext, SimpleNamespace(settings=settings, repo=repo, tokens=tokens,
                                                    limits=limiter))  # fmt: skip

        with_limits, without = context(limits), context(NoLimits())
        per_address, per_account = login_limits(settings)

        def limiter_alone(address: str) -> None:
            limits.give_back(limits.take(per_address, address),
                             limits.take(per_account, "bench@example.com"))  # fmt: skip

        samples: dict[str, list[float]] = {
            "with limiter": [], "without": [], "limiter alone": [], "one round trip": [],
        }  # fmt: skip
        for _ in range(5):  # warm-up: connections, the dummy hash
            _authenticate(with_limits, body, "192.0.2.1")
            _authenticate(without, body, "192.0.2.1")
        for round_number in range(args.rounds):
            address = f"192.0.2.{round_number % 250}"
            samples["with limiter"].append(timed(_authenticate, with_limits, body, address))
            samples["without"].append(timed(_authenticate, without, body, address))
            samples["limiter alone"].append(timed(limiter_alone, address))
            samples["one round trip"].append(timed(repo.ping))  # MongoDB's ping, for scale
        for name, values in samples.items():
            print(summary(name, values))
        with_median, without_median, alone = (
            statistics.median(samples[name])
            for name in ("with limiter", "without", "limiter alone")
        )
        print(f"ratio of the sign-ins' medians {with_median / without_median:.3f}; the limiter "
              f"alone is {alone / without_median:.1%} of a sign-in")  # fmt: skip
        mongo.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
