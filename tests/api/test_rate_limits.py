"""Brute force: failed logins are limited per account and per client address, registrations
per address; the counters live in MongoDB, so every API replica shares them."""

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
from helpers import Api, serve

from transcode_api.main import create_app
from transcode_api.ratelimits import Window, window
from transcode_api.settings import ApiSettings

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
PASSWORD = "long enough password"
# Windows are fixed, so a test running across a window's end would see its counts reset:
# these windows end in 2033 and 2049 (multiples of their length since the epoch).
LOGIN_WINDOW = 10**9
REGISTRATION_WINDOW = 25 * 10**8
LIMITS = {
    "login_failures_per_account": 3,
    "login_failures_per_address": 5,
    "login_window_seconds": LOGIN_WINDOW,
    "registrations_per_address": 4,
    "registration_window_seconds": REGISTRATION_WINDOW,
}


@contextlib.contextmanager
def api_with(settings: ApiSettings, **changes: object) -> Iterator[Api]:
    changed = settings.model_copy(update=LIMITS | changes)
    with serve(create_app(changed)) as url:
        yield Api(url, changed)


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def register(client: httpx.Client, email: str, address: str = "198.51.100.1") -> None:
    account = {"email": email, "password": PASSWORD}
    response = client.post(REGISTER, json=account, headers=from_address(address))
    assert response.status_code == 201, response.text


def login(client: httpx.Client, email: str, password: str, address: str) -> httpx.Response:
    return client.post(LOGIN, json={"email": email, "password": password},
                       headers=from_address(address))  # fmt: skip


def assert_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert "try again" in response.json()["detail"]


def test_failed_logins_are_limited_per_account(api_settings: ApiSettings) -> None:
    with api_with(api_settings, trusted_proxies=["127.0.0.1"]) as api, api.client() as client:
        register(client, "victim@example.com")
        register(client, "other@example.com")
        for number in range(3):  # from three addresses: the account's limit counts them all
            wrong = login(client, "victim@example.com", "wrong password", f"203.0.113.{number}")
            assert wrong.status_code == 401
        right = login(client, "victim@example.com", PASSWORD, "192.0.2.50")
        assert_limited(right, LOGIN_WINDOW)  # even the right password: guesses are not checked
        assert login(client, "other@example.com", PASSWORD, "203.0.113.0").status_code == 200


def test_failed_logins_are_limited_per_address(api_settings: ApiSettings) -> None:
    with api_with(api_settings, trusted_proxies=["127.0.0.1"]) as api, api.client() as client:
        register(client, "user@example.com")
        for number in range(5):  # five accounts, one address
            wrong = login(client, f"guess{number}@example.com", "guess", "203.0.113.9")
            assert wrong.status_code == 401
        assert_limited(login(client, "user@example.com", PASSWORD, "203.0.113.9"), LOGIN_WINDOW)
        # Someone else, elsewhere, is not held back by that address's failures.
        assert login(client, "user@example.com", PASSWORD, "192.0.2.1").status_code == 200


def test_successful_logins_count_for_nothing(api_settings: ApiSettings) -> None:
    with api_with(api_settings, trusted_proxies=["127.0.0.1"]) as api, api.client() as client:
        register(client, "often@example.com")
        for _ in range(8):
            assert login(client, "often@example.com", PASSWORD, "192.0.2.7").status_code == 200
        for _ in range(2):
            assert login(client, "often@example.com", "typo", "192.0.2.7").status_code == 401
        assert login(client, "often@example.com", PASSWORD, "192.0.2.7").status_code == 200


def test_parallel_guesses_get_no_more_than_the_limit(api_settings: ApiSettings) -> None:
    with api_with(api_settings) as api:
        with api.client() as client:
            register(client, "target@example.com")
        guesses = 12
        ready = threading.Barrier(guesses)
        statuses: list[int] = []

        def guess(number: int) -> None:
            with api.client() as client:
                client.get("/healthz")
                ready.wait()
                account = {"email": "target@example.com", "password": f"guess {number}"}
                statuses.append(client.post(LOGIN, json=account).status_code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter(statuses) == {401: 3, 429: guesses - 3}


def test_registrations_are_limited_per_address(api_settings: ApiSettings) -> None:
    with api_with(api_settings, trusted_proxies=["127.0.0.1"]) as api, api.client() as client:
        for number in range(4):
            register(client, f"new{number}@example.com", "203.0.113.5")
        refused = client.post(REGISTER, json={"email": "new4@example.com", "password": PASSWORD},
                              headers=from_address("203.0.113.5"))  # fmt: skip
        assert_limited(refused, REGISTRATION_WINDOW)
        register(client, "new4@example.com", "192.0.2.5")


def test_forwarded_for_counts_only_from_a_trusted_proxy(api_settings: ApiSettings) -> None:
    """By default the peer's address counts, whatever X-Forwarded-For says."""
    with api_with(api_settings) as api, api.client() as client:
        for number in range(5):
            wrong = login(client, f"guess{number}@example.com", "guess", f"203.0.113.{number}")
            assert wrong.status_code == 401
        assert_limited(login(client, "someone@example.com", "guess", "192.0.2.99"), LOGIN_WINDOW)


def test_replicas_share_the_counters(api_settings: ApiSettings) -> None:
    with api_with(api_settings) as first, api_with(api_settings) as second:
        with first.client() as client:
            register(client, "shared@example.com")
        for replica in (first, second, first):
            with replica.client() as client:
                assert login(client, "shared@example.com", "nope", "x").status_code == 401
        with second.client() as client:
            assert_limited(login(client, "shared@example.com", PASSWORD, "x"), LOGIN_WINDOW)


def test_the_address_is_the_rightmost_hop_not_a_trusted_proxy(api_settings: ApiSettings) -> None:
    """A client may prepend anything to X-Forwarded-For; the entry the last trusted proxy
    added is the one that counts."""
    trusted = ["127.0.0.1", "10.0.0.0/8"]
    with api_with(api_settings, trusted_proxies=trusted) as api, api.client() as client:
        for number in range(5):
            chain = f"198.51.100.{number}, 203.0.113.7, 10.1.2.3"
            assert login(client, f"g{number}@example.com", "guess", chain).status_code == 401
        assert_limited(login(client, "g@example.com", "guess", "203.0.113.7"), LOGIN_WINDOW)
        assert login(client, "g@example.com", "guess", "203.0.113.8, 10.9.9.9").status_code == 401


def test_windows_are_fixed() -> None:
    assert window(1000.5, 600) == Window(start=600, retry_after=200)
    assert window(1199.9, 600) == Window(start=600, retry_after=1)
    assert window(1200.0, 600) == Window(start=1200, retry_after=600)
