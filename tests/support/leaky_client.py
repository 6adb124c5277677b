#!/usr/bin/python3
"""An application that leaks memcached connections as the field note's cause 1 does: a
python-memcache Client created per request and never closed (the application keeps a reference
to each, so its socket stays open), `rate` requests a second from source address `source`.

Usage: leaky_client.py HOST:PORT RATE [SOURCE_ADDRESS]
Runs until killed; prints one line per 10 requests to stdout.
"""
import socket
import sys
import time

import memcache

address = sys.argv[1]
rate = float(sys.argv[2])
source = sys.argv[3] if len(sys.argv) > 3 else ""

if source:
    connect = socket.socket.connect

    def bound_connect(self, where):
        self.bind((source, 0))
        return connect(self, where)

    socket.socket.connect = bound_connect

clients = []
start = time.monotonic()
while True:
    client = memcache.Client([address], socket_timeout=1.0)
    client.set("request:%d" % len(clients), "x")
    clients.append(client)
    if len(clients) % 10 == 0:
        print("requests", len(clients), flush=True)
    next_at = start + len(clients) / rate
    time.sleep(max(0.0, next_at - time.monotonic()))
