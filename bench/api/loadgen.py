"""Open-loop HTTP load at a fixed rate (the wrk2 way), for latency at a given throughput.

wrk is closed-loop: each of its C connections sends the next request when the previous answer
arrives, so at a throughput X the mean latency is C / X by Little's law (32 connections at
500/s: 64 ms, whatever the server does). A target like "500 orders/s with p99 <= 50 ms at 32
concurrent clients" is a statement about a server offered 500 requests/s by 32 clients, so this
generator schedules request i at start + i / rate and sends it on the first free one of
`connections` keep-alive connections. Latency runs from the scheduled time, so time spent
waiting for a free connection (the server falling behind) counts (no coordinated omission).

    python bench/api/loadgen.py --url http://127.0.0.1:8000 --rate 500 --connections 32 \\
        --seconds 10 --method POST --path /v1/esim-profiles --key ssk_… \\
        --body '{"external_ref":"bench-{n}"}'

Prints one JSON object: offered and achieved rate, p50/p90/p99/max latency (ms), status counts.
`{n}` in the path or body becomes the request number (unique per run with --tag).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit


async def _connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, rate: float, connections: int, seconds: float, method: str, path: str,
              body: str | None, key: str | None, tag: str) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await _connection(host, port))
    headers = f"Host: {host}:{port}\r\nUser-Agent: simsmith-loadgen\r\n"
    if key:
        headers += f"Authorization: Bearer {key}\r\n"
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    def build(n: int) -> bytes:
        target = path.replace("{n}", f"{tag}-{n}")
        if body is None:
            return f"{method} {target} HTTP/1.1\r\n{headers}\r\n".encode()
        data = body.replace("{n}", f"{tag}-{n}").encode()
        return (f"{method} {target} HTTP/1.1\r\n{headers}Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode() + data

    async def one(n: int, due: float) -> None:
        conn = await pool.get()
        try:
            status: int | str = await _exchange(*conn, build(n))
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            status = type(e).__name__
            conn[1].close()
            conn = await _connection(host, port)
        finally:
            pool.put_nowait(conn)
        latencies.append(loop.time() - due)
        statuses[status] += 1

    tasks = []
    for n in range(total):
        due = start + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {"offered_rps": rate, "achieved_rps": round(total / elapsed, 1),
            "connections": connections, "requests": total, "p50_ms": pct(0.50),
            "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=float, required=True, help="requests per second offered")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--path", required=True)
    ap.add_argument("--body")
    ap.add_argument("--key")
    ap.add_argument("--tag", default=uuid.uuid4().hex[:8])
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    t = time.perf_counter()
    result = asyncio.run(run(args.url, args.rate, args.connections, args.seconds, args.method,
                             args.path, args.body, args.key, args.tag))
    result["wall_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
