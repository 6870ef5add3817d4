"""The official Python SDK (`schematichq`) side of `cargo xtask bench --peers`.

Runs the same scenarios as the flagwire side against the same flagwire-mock
server and prints one JSON object as its last line of output. It imports only
the official package and the standard library.

    python peer.py --rest URL --capture URL --api-key KEY --company-id ID \
        --company-key acme --flag bench-flag --events 20000 --seconds 3 \
        --subtype bench-python-delivery
"""

import argparse
import importlib.metadata
import json
import platform
import resource
import statistics
import sys
import time

from schematic.cache import LocalCache
from schematic.client import Schematic, SchematicConfig
from schematic.webhook_utils import (
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    compute_hex_signature,
    verify_webhook_signature,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def per_call_ns(call, seconds, batch):
    """Median nanoseconds per call over batches of `batch` calls, for about
    `seconds` (at least five batches)."""
    samples = []
    deadline = time.perf_counter() + seconds
    while len(samples) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter_ns() - start) / batch)
    return statistics.median(samples)


def body_of(length):
    # The same bytes as the flagwire-webhooks bench.
    return bytes((i * 131 % 251) for i in range(length))


def verify_scenario(length, seconds, batch):
    """`verify_webhook_signature` over a header mapping, as a web framework
    hands it over, and the raw body."""
    body = body_of(length)
    timestamp = str(int(time.time()))
    headers = {
        "Host": "hooks.example.com",
        "User-Agent": "sender/1.0",
        "Content-Type": "application/json",
        WEBHOOK_SIGNATURE_HEADER: compute_hex_signature(body, timestamp, SECRET),
        WEBHOOK_TIMESTAMP_HEADER: timestamp,
    }
    verify_webhook_signature(headers, SECRET, body)  # raises if it does not verify
    return per_call_ns(lambda: verify_webhook_signature(headers, SECRET, body), seconds, batch)


def client(args, **extra):
    config = SchematicConfig(
        base_url=args.rest,
        event_capture_url=args.capture,
        **extra,
    )
    return Schematic(args.api_key, config)


def check_flag_scenario(args):
    """`Schematic.check_flag` answered from the SDK's local cache. The cache is
    the SDK's own `LocalCache` with its default size and a TTL longer than the
    measurement (the default TTL is 5 s), warmed by one real check."""
    sdk = client(args, cache_providers=[LocalCache(1000, 3_600_000)])
    company = {"id": args.company_key}
    user = {"email": "ann@example.com"}
    if not sdk.check_flag(args.flag, company=company, user=user):
        raise SystemExit(f"check_flag({args.flag!r}) did not answer true from the mock")
    ns = per_call_ns(lambda: sdk.check_flag(args.flag, company=company, user=user), args.seconds, 1000)
    sdk.shutdown()
    return ns


def track_scenario(args):
    """`Schematic.track` with the capture host up: the SDK appends to its list
    and, every 100th event, sends the batch on the calling thread."""
    sdk = client(args)
    company = {"id": args.company_key}
    user = {"email": "ann@example.com"}
    ns = per_call_ns(
        lambda: sdk.track(event="bench-python-enqueue", company=company, user=user, quantity=1),
        args.seconds,
        1000,
    )
    sdk.shutdown()
    return ns


def delivery_scenario(args):
    """`args.events` track calls as fast as they return, then `shutdown()`,
    which sends what is left; the mock's count is checked by the caller."""
    sdk = client(args)
    company = {"id": args.company_key}
    start = time.perf_counter()
    for _ in range(args.events):
        sdk.track(event=args.subtype, company=company, quantity=1)
    sdk.shutdown()
    elapsed = time.perf_counter() - start
    return {"events": args.events, "seconds": elapsed, "events_per_sec": args.events / elapsed}


def get_company_scenario(args):
    """Sequential `companies.get_company(id)` round trips (HTTP keep-alive)."""
    sdk = client(args)
    for _ in range(20):
        sdk.companies.get_company(args.company_id)
    ns = per_call_ns(lambda: sdk.companies.get_company(args.company_id), args.seconds, 20)
    sdk.shutdown()
    return ns


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", required=True)
    parser.add_argument("--capture", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--company-id", required=True)
    parser.add_argument("--company-key", required=True)
    parser.add_argument("--flag", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--subtype", required=True)
    args = parser.parse_args()

    out = {
        "side": "python",
        "package": "schematichq",
        "version": importlib.metadata.version("schematichq"),
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
    }
    out["verify_1k_ns"] = verify_scenario(1024, args.seconds, 1000)
    out["verify_64k_ns"] = verify_scenario(64 * 1024, args.seconds, 20)
    out["check_flag_cached_ns"] = check_flag_scenario(args)
    out["track_ns"] = track_scenario(args)
    out["get_company_ns"] = get_company_scenario(args)
    out["delivery"] = delivery_scenario(args)
    # ru_maxrss is in KiB on Linux.
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
