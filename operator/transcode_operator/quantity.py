"""Kubernetes resource quantities ("20Gi", "5G", "512Mi") as byte counts, and back (pure)."""

import math
import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?$"
)
_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
MiB = 2**20


def parse_quantity(text: str) -> int:
    """Bytes in a quantity of storage (fractions of a byte round up, as the API server does)."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r} (e.g. 20Gi, 5G, 512Mi)")
    number, exponent, suffix = match.groups()
    try:
        value = Decimal(number + (exponent or "")) * _SUFFIXES[suffix or ""]
    except InvalidOperation as exc:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from exc
    return math.ceil(value)


def mebibytes(size: int) -> str:
    """A byte count as a quantity in whole MiB, rounded up."""
    return f"{math.ceil(size / MiB)}Mi"
