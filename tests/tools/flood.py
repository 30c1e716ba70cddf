#!/usr/bin/env python3
"""Bounded floods and probes against a skiff daemon, for the loopback tests.

Every mode talks to loopback addresses only, runs for --duration seconds at
most and prints one JSON line of figures on stdout when it ends.

  idle         hold --count connections (plain TCP, or TLS without a client
               certificate with --tls) from the --sources addresses, doing
               nothing; a connection the server closes is opened again after
               --reconnect-ms (0: not at all)
  join         POST /v1/join with --token at --rate requests/s in all over
               --conns keep-alive TLS connections without a certificate
  probe        POST /v1/node/heartbeat every --period s with a node's
               certificate; reports round-trip times
  raft-header  with a manager's certificate, open a Raft connection (the
               skiff preamble) and send one libraft message preamble that
               claims --header-len bytes of header, or one AppendEntries
               header whose single entry claims --entry-len bytes; reports
               whether and when the server hung up

--sources is an address range such as 127.1.2.100-149: connection i binds
source address number i modulo the range (a flood from many hosts).
--ready FILE is written once the first round of connections was tried.
"""
import argparse
import asyncio
import base64
import json
import ssl
import struct
import sys
import time


def now_ms():
    return time.monotonic() * 1000.0


def parse_sources(spec):
    if not spec:
        return [None]
    base, _, span = spec.rpartition(".")
    if "-" in span:
        lo, hi = (int(x) for x in span.split("-"))
    else:
        lo = hi = int(span)
    for addr in (lo, hi):
        if not 0 < addr < 255:
            sys.exit(f"bad --sources {spec}")
    if not spec.startswith("127."):
        sys.exit("--sources must be loopback addresses")
    return [f"{base}.{i}" for i in range(lo, hi + 1)]


def split_target(target):
    host, _, port = target.rpartition(":")
    if not host.startswith("127."):
        sys.exit("--target must be a loopback address")
    return host, int(port)


def client_ctx(ca=None, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


async def open_conn(host, port, src, ctx, timeout=5.0):
    local = (src, 0) if src else None
    return await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, local_addr=local,
                                server_hostname="skiff" if ctx else None),
        timeout)


def close_writer(w):
    try:
        w.transport.abort()
    except Exception:
        pass


# ---- idle ----

async def idle(args):
    host, port = split_target(args.target)
    sources = parse_sources(args.sources)
    ctx = client_ctx() if args.tls else None
    deadline = time.monotonic() + args.duration
    st = {"mode": "idle", "tls": bool(args.tls), "count": args.count,
          "sources": len(sources), "opened": 0, "connect_failed": 0,
          "closed_by_server": 0, "open": 0, "open_max": 0}
    first_round = [0]

    def round_done():
        first_round[0] += 1
        if first_round[0] == args.count and args.ready:
            open(args.ready, "w").write(json.dumps(st) + "\n")

    async def one(i):
        src = sources[i % len(sources)]
        first = True
        while time.monotonic() < deadline:
            try:
                r, w = await open_conn(host, port, src, ctx)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                st["connect_failed"] += 1
                if first:
                    first = False
                    round_done()
                if not args.reconnect_ms:
                    return
                await asyncio.sleep(args.reconnect_ms / 1000.0)
                continue
            st["opened"] += 1
            st["open"] += 1
            st["open_max"] = max(st["open_max"], st["open"])
            if first:
                first = False
                round_done()
            try:
                left = deadline - time.monotonic()
                data = await asyncio.wait_for(r.read(1024), max(left, 0.01))
                while data:
                    data = await asyncio.wait_for(r.read(1024),
                                                  max(deadline - time.monotonic(), 0.01))
                st["closed_by_server"] += 1
            except asyncio.TimeoutError:
                pass
            except (OSError, ssl.SSLError):
                st["closed_by_server"] += 1
            finally:
                st["open"] -= 1
                close_writer(w)
            if not args.reconnect_ms:
                return
            await asyncio.sleep(args.reconnect_ms / 1000.0)

    # Connect in waves so that the first round is not one burst of SYNs
    # larger than the listen backlog.
    tasks = []
    for i in range(args.count):
        tasks.append(asyncio.ensure_future(one(i)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    return st


# ---- HTTP over a stream ----

async def http_call(r, w, method, path, body=b"", timeout=5.0):
    req = (f"{method} {path} HTTP/1.1\r\nHost: skiff\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    w.write(req)
    await w.drain()
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    data = await asyncio.wait_for(r.readexactly(length), timeout) if length else b""
    return status, data, close


# ---- join ----

async def join(args):
    host, port = split_target(args.target)
    sources = parse_sources(args.sources)
    ctx = client_ctx()
    body = json.dumps({"token": args.token, "csr": "not a csr",
                       "hostname": "flood", "addr": "127.0.0.1",
                       "data_addr": "127.0.0.1", "api_addr": "127.0.0.1:1",
                       "raft_addr": "127.0.0.1:2"}).encode()
    deadline = time.monotonic() + args.duration
    st = {"mode": "join", "rate": args.rate, "conns": args.conns,
          "sources": len(sources), "sent": 0, "status": {},
          "connects": 0, "connect_failed": 0, "errors": 0}
    interval = args.conns / float(args.rate)
    started = time.monotonic()

    async def one(i):
        src = sources[i % len(sources)]
        nxt = started + interval * i / args.conns
        conn = None
        while time.monotonic() < deadline:
            if conn is None:
                try:
                    conn = await open_conn(host, port, src, ctx)
                    st["connects"] += 1
                except (OSError, asyncio.TimeoutError, ssl.SSLError):
                    st["connect_failed"] += 1
                    await asyncio.sleep(0.05)
                    continue
            delay = nxt - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            nxt = max(nxt + interval, time.monotonic() - interval)
            try:
                st["sent"] += 1
                status, _, close = await http_call(conn[0], conn[1], "POST",
                                                   "/v1/join", body)
                key = str(status)
                st["status"][key] = st["status"].get(key, 0) + 1
            except (OSError, asyncio.TimeoutError, ssl.SSLError,
                    asyncio.IncompleteReadError, ValueError, IndexError):
                st["errors"] += 1
                close = True
            if close:
                close_writer(conn[1])
                conn = None
        if conn:
            close_writer(conn[1])

    await asyncio.gather(*(one(i) for i in range(args.conns)))
    st["seconds"] = round(time.monotonic() - started, 2)
    return st


# ---- probe ----

def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 1)


async def probe(args):
    host, port = split_target(args.target)
    ctx = client_ctx(args.ca, args.cert, args.key)
    deadline = time.monotonic() + args.duration
    rtts, errors, conn = [], [], None
    nxt = time.monotonic()
    while time.monotonic() < deadline:
        t0 = now_ms()
        try:
            if conn is None:
                conn = await open_conn(host, port, None, ctx)
            status, data, close = await http_call(conn[0], conn[1], "POST",
                                                  args.path, b"", timeout=5.0)
            if status != 200:
                errors.append(f"HTTP {status}: {data[:200].decode('latin-1')}")
            else:
                rtts.append(now_ms() - t0)
            if close:
                close_writer(conn[1])
                conn = None
        except (OSError, asyncio.TimeoutError, ssl.SSLError,
                asyncio.IncompleteReadError, ValueError, IndexError) as e:
            errors.append(f"{type(e).__name__}: {e}")
            if conn:
                close_writer(conn[1])
            conn = None
        nxt += args.period
        delay = nxt - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            nxt = time.monotonic()
    if conn:
        close_writer(conn[1])
    return {"mode": "probe", "n": len(rtts), "errors": len(errors),
            "first_errors": errors[:3], "p50_ms": percentile(rtts, 0.5),
            "p99_ms": percentile(rtts, 0.99),
            "max_ms": round(max(rtts), 1) if rtts else None}


# ---- raft-header ----

def raft_id_of(node_id):
    """lib/id.c sk_raft_id_of: the first 8 bytes of the base32-decoded node
    ID, little endian, 63 bits, never 0."""
    s = node_id.upper()
    raw = base64.b32decode(s + "=" * (-len(s) % 8))
    v = int.from_bytes(raw[:8], "little") & (2**63 - 1)
    return v or 1


async def raft_header(args):
    host, port = split_target(args.target)
    ctx = client_ctx(args.ca, args.cert, args.key)
    r, w = await open_conn(host, port, None, ctx)
    addr = args.addr.encode()
    w.write(b"SKRAFT1\n" + struct.pack("<QH", raft_id_of(args.node_id), len(addr)) + addr)
    if args.entry_len:
        # AppendEntries (type 1, version 0): term, prev index, prev term,
        # commit, then a batch of one entry (term, type COMMAND, length),
        # then 8 unused bytes.
        header = struct.pack("<QQQQ", 1, 0, 0, 0) + struct.pack("<Q", 1)
        header += struct.pack("<QB3xI", 1, 1, args.entry_len) + b"\0" * 8
        w.write(struct.pack("<QQ", 1, len(header)) + header)
    else:
        # RequestVote (type 3) whose header claims --header-len bytes; a few
        # of them follow, not all.
        w.write(struct.pack("<QQ", 3, args.header_len) + b"\0" * 64)
    await w.drain()
    t0 = now_ms()
    closed = False
    if args.ready:
        # Give the server a moment to act on what it got, then say so.
        await asyncio.sleep(0.3)
        open(args.ready, "w").write("sent\n")
    try:
        while True:
            data = await asyncio.wait_for(r.read(1024), args.duration)
            if not data:
                break
        closed = True
    except asyncio.TimeoutError:
        pass
    except (OSError, ssl.SSLError):
        closed = True
    close_writer(w)
    return {"mode": "raft-header", "closed": closed,
            "after_ms": round(now_ms() - t0) if closed else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["idle", "join", "probe", "raft-header"])
    ap.add_argument("--target", required=True, help="HOST:PORT (loopback)")
    ap.add_argument("--sources", help="source address range, e.g. 127.1.2.100-149")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--ready", help="file written after the first round")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--reconnect-ms", type=int, default=200)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--token", default="SKF1-x-y")
    ap.add_argument("--period", type=float, default=0.25)
    ap.add_argument("--path", default="/v1/node/heartbeat")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--node-id")
    ap.add_argument("--addr", default="127.0.0.1:1")
    ap.add_argument("--header-len", type=int, default=512 << 20)
    ap.add_argument("--entry-len", type=int, default=0)
    args = ap.parse_args()
    if args.duration > 120:
        sys.exit("--duration is capped at 120 s")
    if args.count > 5000 or args.conns > 500 or args.rate > 5000:
        sys.exit("--count, --conns or --rate beyond the tool's bounds")
    fn = {"idle": idle, "join": join, "probe": probe,
          "raft-header": raft_header}[args.mode]
    print(json.dumps(asyncio.run(fn(args))), flush=True)


if __name__ == "__main__":
    main()
