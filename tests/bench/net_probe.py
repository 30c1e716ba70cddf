#!/usr/bin/python3
"""Network probes for tests/bench/net-bench.sh, run inside a container's
network namespace (nsenter --net=SANDBOX) or a lab host's own.

  net_probe.py connect HOST PORT N   N short HTTP connections (connect, GET
                                     /, read the reply, close), one after
                                     another; prints the median and p90 of
                                     their durations in microseconds
  net_probe.py resolve NAME WANT SECONDS
                                     asks the container's resolver
                                     (127.0.0.11, Docker's embedded DNS)
                                     for NAME's A records every 20 ms
                                     until WANT addresses come back;
                                     prints the wall clock (ms since the
                                     epoch) when they did, or "timeout"
Standard library only: the same client for skiff, Swarm and the limit.
"""
import socket
import statistics
import struct
import sys
import time


def connect(host, port, n):
    request = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(request)
        while s.recv(65536):
            pass
        s.close()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    print(f"{statistics.median(samples):.0f} {samples[int(len(samples) * 0.9)]:.0f}")


def query(name, qid):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack(">HH", 1, 1)


def answers(reply):
    """The number of A records in a reply."""
    qd, an = struct.unpack(">HH", reply[4:8])
    off = 12
    for _ in range(qd):
        while reply[off] != 0:
            off += 1 + reply[off]
        off += 5
    count = 0
    for _ in range(an):
        if reply[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while reply[off] != 0:
                off += 1 + reply[off]
            off += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", reply[off:off + 10])
        off += 10 + rdlen
        count += rtype == 1
    return count


def resolve(name, want, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    t0 = time.monotonic()
    qid = 1
    while time.monotonic() - t0 < seconds:
        qid = (qid + 1) & 0xFFFF
        try:
            s.sendto(query(name, qid), ("127.0.0.11", 53))
            reply, _ = s.recvfrom(4096)
            if answers(reply) >= want:
                print(f"{time.time() * 1000:.0f}")
                return
        except (socket.timeout, OSError, IndexError, struct.error):
            pass
        time.sleep(0.02)
    print("timeout")


def main():
    if sys.argv[1] == "connect":
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "resolve":
        resolve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(f"unknown probe {sys.argv[1]}")


if __name__ == "__main__":
    main()
