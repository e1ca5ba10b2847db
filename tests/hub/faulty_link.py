#!/usr/bin/env python3
"""faulty_link.py - a loopback TCP proxy that behaves like a bad rural link.

  faulty_link.py --listen PORT --to PORT [--rate BYTES_PER_S] [--latency S]
                 [--drop P] [--cut P] [--cut-max BYTES] [--seed N] [--stats FILE]

--rate      bandwidth of the whole link, each direction (token bucket)
--latency   one-way delay added when a connection opens and before each answer
--drop      probability that a new connection is closed at once
--cut       probability that a connection is cut at a random byte offset of
            what the client sends (mid-batch, mid-photo)
--cut-max   that offset is drawn from 1..BYTES (default 400000; ~70000 puts the
            cuts inside 64 KiB photo chunks)
--stats     appends "UP DOWN CUT" per connection (bytes through the link)
Prints "ready" on stdout once listening. Standard library only.
"""
import argparse
import random
import socket
import sys
import threading
import time


class Bucket:
    def __init__(self, rate):
        self.rate, self.lock, self.t, self.tokens = rate, threading.Lock(), time.monotonic(), 0.0

    def take(self, n):
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate * 0.25, self.tokens + (now - self.t) * self.rate)
                self.t = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(wait)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", type=int, required=True)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--latency", type=float, default=0)
    ap.add_argument("--drop", type=float, default=0)
    ap.add_argument("--cut", type=float, default=0)
    ap.add_argument("--cut-max", type=int, default=400000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stats")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    rng_lock = threading.Lock()
    up_bucket, down_bucket = Bucket(a.rate), Bucket(a.rate)
    stats_lock = threading.Lock()

    def pump(src, dst, bucket, counter, key, cut_at, delay_answers, done):
        last = time.monotonic()
        try:
            while True:
                data = src.recv(1024)
                if not data:
                    break
                if delay_answers and time.monotonic() - last > a.latency:
                    time.sleep(a.latency)
                last = time.monotonic()
                if cut_at is not None and counter[key] + len(data) >= cut_at:
                    data = data[: max(0, cut_at - counter[key])]
                    bucket.take(len(data))
                    dst.sendall(data)
                    counter[key] += len(data)
                    counter["cut"] = 1
                    break
                bucket.take(len(data))
                dst.sendall(data)
                counter[key] += len(data)
        except OSError:
            pass
        finally:
            done.set()
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(client):
        with rng_lock:
            drop = rng.random() < a.drop
            cut_at = rng.randint(1, a.cut_max) if rng.random() < a.cut else None
        counter = {"up": 0, "down": 0, "cut": 0}
        if drop:
            client.close()
            counter["cut"] = 1
        else:
            time.sleep(a.latency)
            try:
                up = socket.create_connection(("127.0.0.1", a.to))
            except OSError:
                client.close()
                return
            d1, d2 = threading.Event(), threading.Event()
            t1 = threading.Thread(target=pump, args=(client, up, up_bucket, counter, "up", cut_at, False, d1), daemon=True)
            t2 = threading.Thread(target=pump, args=(up, client, down_bucket, counter, "down", None, True, d2), daemon=True)
            t1.start()
            t2.start()
            t1.join()
            t2.join()
            client.close()
            up.close()
        if a.stats:
            with stats_lock, open(a.stats, "a") as f:
                f.write("%d %d %d\n" % (counter["up"], counter["down"], counter["cut"]))

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.listen))
    srv.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
