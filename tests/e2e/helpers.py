"""Small network programs for the end-to-end cases (python3, stdlib only).

  helpers.py tcp-echo HOST PORT     echo every connection until its EOF, then
                                    shut down writing; serve forever
  helpers.py udp-echo HOST PORT     send every datagram back to its sender
  helpers.py udp-client HOST PORT   exchange datagrams with udp-echo and check
                                    that each comes back whole and alone; one
                                    PASS/FAIL line per check, status 1 on FAIL
  helpers.py relay LPORT TPORT      accept one connection on 127.0.0.1:LPORT,
                                    connect to 127.0.0.1:TPORT, copy both ways
                                    until both EOFs; print "c2s BYTES CRC" and
                                    "s2c BYTES CRC" (CRC-32, 8 hex digits) of
                                    what crossed
  helpers.py asyncio-echo HOST PORT
  helpers.py selectors-echo HOST PORT
  helpers.py forking-echo HOST PORT
                                    echo servers (asyncio streams; one
                                    selectors loop over nonblocking
                                    sockets; socketserver forking a child
                                    per connection, which prints its pid
                                    first): echo until EOF, then shut
                                    down writing; serve forever
  helpers.py asyncio-client HOST PORT CONNS MSGS
  helpers.py selectors-client HOST PORT CONNS MSGS
                                    CONNS concurrent connections, each
                                    sending MSGS messages of mixed sizes
                                    (1 B to 256 KiB, some pipelined) and
                                    checking that the echo is the same
                                    bytes; then EOF both ways.  One PASS
                                    or FAIL line, status 1 on FAIL
  helpers.py exec-listen HOST PORT  bind and listen without CLOEXEC, then
                                    exec "helpers.py inherited-echo FD"
  helpers.py exec-connect HOST PORT MSGS
                                    connect without CLOEXEC, then exec
                                    "helpers.py fd-client FD MSGS"
  helpers.py inherited-echo FD      socket.socket(fileno=FD): tcp-echo on
                                    an inherited listening socket
  helpers.py fd-client FD MSGS      the selectors client's exchange on an
                                    inherited connected socket

  helpers.py hold HOST PORT IDLE PARTIAL STOPFILE
                                    open IDLE connections that send nothing
                                    and PARTIAL that send half an HTTP
                                    request header; print "held N", keep
                                    them until STOPFILE exists (at most
                                    GUARD s), then print "closed K open M":
                                    how many the server side had closed
  helpers.py dns-tcp HOST PORT LOG  a single-threaded DNS-over-TCP server:
                                    one connection at a time, each query
                                    answered with A 192.0.2.7; appends
                                    "accept PEERPORT", "query PEERPORT NAME"
                                    and "eof PEERPORT partial N" (EOF with N
                                    bytes of an unfinished message) to LOG
  helpers.py dns-slow HOST PORT NAME GOFILE [eof]
                                    a DNS-over-TCP client: sends the 2-byte
                                    length and half the query, prints "port
                                    P" (its own port) and "sent-first", waits
                                    for GOFILE (at most GUARD s), then sends
                                    the rest and prints the A record of the
                                    answer; with "eof", shuts down writing
                                    instead of the rest and prints "eof"
                                    when the server closes
  helpers.py idle HOST PORT STOPFILE
                                    one connection that sends nothing: print
                                    "port P", hold it until STOPFILE exists
                                    (at most GUARD s), then "closed" or
                                    "open" (did the server side close it)

Loopback only.  The cases bound every run with `timeout`; the socket
timeouts below are hang guards too.
"""

import os
import select
import socket
import struct
import sys
import threading
import time
import zlib

GUARD = 30.0


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp_echo(host, port):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def udp_echo(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data, peer)


def pattern(tag, size):
    """Deterministic, distinct content for datagram number tag."""
    seed = bytes(f"<{tag}:{size}>", "ascii")
    out = bytearray()
    i = 0
    while len(out) < size:
        out += zlib.crc32(seed + i.to_bytes(4, "little")).to_bytes(4, "little")
        i += 1
    return bytes(out[:size])


def udp_client(host, port):
    failures = 0
    peer = (host, port)

    def check(ok, what):
        nonlocal failures
        print(("PASS: " if ok else "FAIL: ") + what, flush=True)
        if not ok:
            failures += 1

    def describe(got, want):
        if got == want:
            return "identical"
        return f"got {len(got)} bytes, want {len(want)}"

    # Unconnected socket, sendto/recvfrom, one datagram at a time.
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(GUARD)
    sizes = [1, 2, 7, 100, 512, 1400, 1472, 1473, 4096, 9000, 32768,
             65507 if family(host) == socket.AF_INET else 65527]
    for n, size in enumerate(sizes):
        want = pattern(n, size)
        s.sendto(want, peer)
        got, src = s.recvfrom(65536)
        check(got == want, f"sendto/recvfrom {size} bytes: "
              f"{describe(got, want)}")
        check(src[0] == peer[0] and src[1] == peer[1],
              f"reply from {src[0]} port {src[1]}")

    # An empty datagram is a datagram too.
    s.sendto(b"", peer)
    s.sendto(b"after-empty", peer)
    got1, _ = s.recvfrom(65536)
    got2, _ = s.recvfrom(65536)
    check(got1 == b"" and got2 == b"after-empty",
          f"empty datagram kept apart: got {got1!r} then {got2!r}")

    # Connected socket, send/recv, a burst before reading anything back:
    # order, count and boundaries.
    c = socket.socket(family(host), socket.SOCK_DGRAM)
    c.settimeout(GUARD)
    c.connect(peer)
    burst = [pattern(100 + i, 1 + (i * 37) % 1000) for i in range(32)]
    for d in burst:
        c.send(d)
    got = [c.recv(65536) for _ in burst]
    bad = [i for i, (g, w) in enumerate(zip(got, burst)) if g != w]
    check(not bad, f"burst of {len(burst)} datagrams: "
          + ("in order and whole" if not bad else f"datagrams {bad} differ"))

    # A short read truncates one datagram; the rest of it is gone and the
    # next read returns the next datagram whole.
    first, second = pattern(200, 1000), pattern(201, 1000)
    c.send(first)
    c.send(second)
    head = c.recv(100)
    nxt = c.recv(65536)
    check(head == first[:100], f"short read of a datagram: "
          f"{describe(head, first[:100])}")
    check(nxt == second, f"read after a short read is the next datagram: "
          f"{describe(nxt, second)}")

    # Gather and scatter: three buffers are one datagram.
    parts = [b"alpha-", b"beta-", b"gamma"]
    c.sendmsg(parts)
    b1, b2 = bytearray(8), bytearray(64)
    nbytes, _, flags, _ = c.recvmsg_into([b1, b2])
    joined = bytes(b1 + b2)[:nbytes]
    check(joined == b"".join(parts) and not flags & socket.MSG_TRUNC,
          f"sendmsg of 3 buffers, recvmsg_into 2 buffers: got {joined!r}")

    # MSG_PEEK leaves the datagram queued.
    c.send(b"peek-me")
    peeked = c.recv(65536, socket.MSG_PEEK)
    again = c.recv(65536)
    check(peeked == b"peek-me" and again == b"peek-me",
          f"MSG_PEEK then recv: got {peeked!r} then {again!r}")

    print(f"{failures} failures", flush=True)
    return 1 if failures else 0


def relay(lport, tport):
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("127.0.0.1", lport))
    lsn.listen(1)
    a, _ = lsn.accept()
    lsn.close()
    b = socket.create_connection(("127.0.0.1", tport))
    other = {a: b, b: a}
    name = {a: "c2s", b: "s2c"}
    count = {"c2s": 0, "s2c": 0}
    crc = {"c2s": 0, "s2c": 0}
    open_in = [a, b]
    while open_in:
        ready, _, _ = select.select(open_in, [], [])
        for s in ready:
            data = s.recv(262144)
            d = name[s]
            if not data:
                other[s].shutdown(socket.SHUT_WR)
                open_in.remove(s)
                continue
            count[d] += len(data)
            crc[d] = zlib.crc32(data, crc[d])
            other[s].sendall(data)
    for d in ("c2s", "s2c"):
        print(f"{d} {count[d]} {crc[d]:08x}", flush=True)
    return 0


# ---------------------------------------------------------------------
# Event-loop, forking and exec-inherited echo servers and clients.
# ---------------------------------------------------------------------

def sizes_for(tag, count):
    """Mixed message sizes, deterministic per tag: mostly small, some
    around common buffer sizes, a few up to 256 KiB."""
    out = []
    x = zlib.crc32(bytes(str(tag), "ascii")) | 1
    for _ in range(count):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        r = x % 100
        if r < 50:
            out.append(1 + x % 200)
        elif r < 80:
            out.append(1000 + x % 16384)
        elif r < 95:
            out.append(60000 + x % 8000)
        else:
            out.append(1 + x % 262144)
    return out


def serve_echo_conn(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def listen_on(host, port, backlog=64):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(backlog)
    return srv


def asyncio_echo(host, port):
    import asyncio

    async def handle(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, host, port,
                                            reuse_address=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    return 0


def asyncio_client(host, port, conns, msgs):
    import asyncio

    totals = {"bytes": 0, "msgs": 0, "bad": 0}

    async def one(n):
        reader, writer = await asyncio.open_connection(host, port)
        sizes = sizes_for(f"a{n}", msgs)
        i = 0
        while i < len(sizes):
            # Sometimes pipeline up to 3 messages before reading back.
            batch = sizes[i:i + 1 + (i % 3)]
            want = b"".join(pattern(f"a{n}.{i + j}", sz)
                            for j, sz in enumerate(batch))
            writer.write(want)
            await writer.drain()
            got = await asyncio.wait_for(reader.readexactly(len(want)),
                                         GUARD)
            if got != want:
                totals["bad"] += 1
            totals["bytes"] += len(want)
            totals["msgs"] += len(batch)
            i += len(batch)
        writer.write_eof()
        rest = await asyncio.wait_for(reader.read(), GUARD)
        if rest:
            totals["bad"] += 1
        writer.close()
        await writer.wait_closed()

    async def main():
        await asyncio.gather(*(one(n) for n in range(conns)))

    asyncio.run(main())
    ok = totals["bad"] == 0 and totals["msgs"] == conns * msgs
    print(("PASS" if ok else "FAIL") +
          f" asyncio-client: {conns} connections, {totals['msgs']} messages,"
          f" {totals['bytes']} bytes echoed, {totals['bad']} mismatches",
          flush=True)
    return 0 if ok else 1


def selectors_echo(host, port):
    import selectors

    sel = selectors.DefaultSelector()
    srv = listen_on(host, port)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ, None)
    state = {}

    def update(c):
        st = state[c]
        ev = 0 if st["eof"] else selectors.EVENT_READ
        if st["out"]:
            ev |= selectors.EVENT_WRITE
        if ev == 0:
            sel.unregister(c)
            c.shutdown(socket.SHUT_WR)
            c.close()
            del state[c]
        else:
            sel.modify(c, ev, None)

    while True:
        for key, mask in sel.select():
            if key.fileobj is srv:
                try:
                    c, _ = srv.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                state[c] = {"out": bytearray(), "eof": False}
                sel.register(c, selectors.EVENT_READ, None)
                continue
            c = key.fileobj
            st = state[c]
            if mask & selectors.EVENT_READ:
                try:
                    data = c.recv(65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    st["eof"] = True
                elif data:
                    st["out"] += data
            if st["out"]:
                try:
                    n = c.send(st["out"])
                    del st["out"][:n]
                except BlockingIOError:
                    pass
            update(c)


def selectors_exchange(socks, msgs, tagbase):
    """Drive the echo exchange over nonblocking sockets with one selector;
    returns (messages, bytes, mismatches)."""
    import selectors

    sel = selectors.DefaultSelector()
    conns = {}
    for n, s in enumerate(socks):
        s.setblocking(False)
        sizes = sizes_for(f"{tagbase}{n}", msgs)
        conns[s] = {"tag": f"{tagbase}{n}", "sizes": sizes, "i": 0,
                    "out": bytearray(), "want": b"", "got": bytearray(),
                    "eof_sent": False}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, None)
    total_msgs = total_bytes = bad = 0

    def next_msg(st):
        if st["i"] >= len(st["sizes"]):
            return False
        i = st["i"]
        st["want"] = pattern(f"{st['tag']}.{i}", st["sizes"][i])
        st["out"] += st["want"]
        st["got"] = bytearray()
        st["i"] += 1
        return True

    for st in conns.values():
        next_msg(st)
    open_socks = set(conns)
    while open_socks:
        for key, mask in sel.select(GUARD):
            s = key.fileobj
            st = conns[s]
            if mask & selectors.EVENT_WRITE and st["out"]:
                try:
                    n = s.send(st["out"])
                    del st["out"][:n]
                except BlockingIOError:
                    pass
            if mask & selectors.EVENT_READ:
                try:
                    data = s.recv(262144)
                except BlockingIOError:
                    data = None
                if data == b"":
                    if len(st["got"]) or not st["eof_sent"]:
                        bad += 1
                    sel.unregister(s)
                    s.close()
                    open_socks.discard(s)
                    continue
                if data:
                    st["got"] += data
                    if len(st["got"]) > len(st["want"]):
                        bad += 1
                    if len(st["got"]) >= len(st["want"]):
                        if bytes(st["got"]) != st["want"]:
                            bad += 1
                        total_msgs += 1
                        total_bytes += len(st["want"])
                        st["got"] = bytearray()
                        st["want"] = b""
                        if not next_msg(st):
                            s.shutdown(socket.SHUT_WR)
                            st["eof_sent"] = True
            ev = selectors.EVENT_READ
            if st["out"]:
                ev |= selectors.EVENT_WRITE
            sel.modify(s, ev, None)
    return total_msgs, total_bytes, bad


def report_exchange(name, conns, msgs, result):
    total_msgs, total_bytes, bad = result
    ok = bad == 0 and total_msgs == conns * msgs
    print(("PASS" if ok else "FAIL") +
          f" {name}: {conns} connections, {total_msgs} messages,"
          f" {total_bytes} bytes echoed, {bad} mismatches", flush=True)
    return 0 if ok else 1


def selectors_client(host, port, conns, msgs):
    socks = []
    for _ in range(conns):
        s = socket.create_connection((host, port), timeout=GUARD)
        socks.append(s)
    return report_exchange("selectors-client", conns, msgs,
                           selectors_exchange(socks, msgs, "s"))


def forking_echo(host, port):
    import os
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            serve_echo_conn(self.request)

    class Server(socketserver.ForkingTCPServer):
        allow_reuse_address = True
        address_family = family(host)

    print(f"server pid {os.getpid()}", flush=True)
    with Server((host, port), Handler) as srv:
        srv.serve_forever()
    return 0


def exec_listen(host, port):
    import os
    srv = listen_on(host, port)
    srv.set_inheritable(True)
    fd = srv.detach()
    os.execv(sys.executable, [sys.executable, __file__, "inherited-echo",
                              str(fd)])


def exec_connect(host, port, msgs):
    import os
    s = socket.create_connection((host, port), timeout=GUARD)
    s.set_inheritable(True)
    fd = s.detach()
    os.execv(sys.executable, [sys.executable, __file__, "fd-client",
                              str(fd), str(msgs)])


def inherited_echo(fd):
    import os
    srv = socket.socket(fileno=fd)
    print(f"pid {os.getpid()}: inherited fd {fd}: {srv.family.name} "
          f"listening on port {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_echo_conn, args=(conn,),
                         daemon=True).start()


def fd_client(fd, msgs):
    import os
    s = socket.socket(fileno=fd)
    print(f"pid {os.getpid()}: inherited fd {fd}: {s.family.name} "
          f"connected to port {s.getpeername()[1]}", flush=True)
    return report_exchange("fd-client", 1, msgs,
                           selectors_exchange([s], msgs, "f"))


def wait_file(path):
    """Wait (at most GUARD s) until path exists; True if it does."""
    end = time.monotonic() + GUARD
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def server_closed(s):
    """Has the server side of connection s closed it (EOF or reset)?"""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


HALF_HEADER = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: hold"


def hold(host, port, idle, partial, stopfile):
    conns = []
    for i in range(idle + partial):
        s = socket.create_connection((host, port), timeout=GUARD)
        if i >= idle:
            s.sendall(HALF_HEADER)
        conns.append(s)
    print(f"held {len(conns)}", flush=True)
    wait_file(stopfile)
    closed = sum(1 for s in conns if server_closed(s))
    print(f"closed {closed} open {len(conns) - closed}", flush=True)
    for s in conns:
        s.close()
    return 0


def idle_conn(host, port, stopfile):
    s = socket.create_connection((host, port), timeout=GUARD)
    print(f"port {s.getsockname()[1]}", flush=True)
    wait_file(stopfile)
    print("closed" if server_closed(s) else "open", flush=True)
    s.close()
    return 0


def dns_name(msg, off):
    """The dotted name at offset off of a DNS message (no compression in
    questions), and the offset after it."""
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels), off
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def dns_query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    return q + b"\0" + struct.pack(">HH", 1, 1)


def dns_answer(query):
    """Answer A 192.0.2.7 to the first question of query (and no other
    section: EDNS is dropped)."""
    qid, _, qd, _, _, _ = struct.unpack(">HHHHHH", query[:12])
    name, end = dns_name(query, 12)
    question = query[12:end + 4]
    qtype = struct.unpack(">H", query[end:end + 2])[0]
    an = 1 if qd and qtype == 1 else 0
    out = struct.pack(">HHHHHH", qid, 0x8180, 1, an, 0, 0) + question
    if an:
        out += struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes(
            [192, 0, 2, 7])
    return name, out


def recv_exact(s, n):
    """n bytes from s, or fewer at EOF."""
    buf = b""
    while len(buf) < n:
        data = s.recv(n - len(buf))
        if not data:
            break
        buf += data
    return buf


def dns_tcp(host, port, logpath):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)
    with open(logpath, "a", buffering=1) as log:
        while True:
            conn, peer = srv.accept()
            conn.settimeout(GUARD)
            log.write(f"accept {peer[1]}\n")
            with conn:
                try:
                    while True:
                        head = recv_exact(conn, 2)
                        if len(head) < 2:
                            log.write(f"eof {peer[1]} partial {len(head)}\n")
                            break
                        (length,) = struct.unpack(">H", head)
                        body = recv_exact(conn, length)
                        if len(body) < length:
                            log.write(f"eof {peer[1]} partial "
                                      f"{2 + len(body)}\n")
                            break
                        name, out = dns_answer(body)
                        log.write(f"query {peer[1]} {name}\n")
                        conn.sendall(struct.pack(">H", len(out)) + out)
                except OSError as e:
                    log.write(f"error {peer[1]} {e}\n")


def dns_slow(host, port, name, gofile, eof):
    s = socket.create_connection((host, port), timeout=GUARD)
    q = dns_query(0x5151, name)
    msg = struct.pack(">H", len(q)) + q
    half = 2 + len(q) // 2
    print(f"port {s.getsockname()[1]}", flush=True)
    s.sendall(msg[:half])
    print("sent-first", flush=True)
    if not wait_file(gofile):
        print("no go file", flush=True)
        return 1
    if eof:
        s.shutdown(socket.SHUT_WR)
        rest = s.recv(65536)
        print("eof" if rest == b"" else f"unexpected {rest!r}", flush=True)
        return 0 if rest == b"" else 1
    s.sendall(msg[half:])
    head = recv_exact(s, 2)
    (length,) = struct.unpack(">H", head)
    ans = recv_exact(s, length)
    _, _, _, an, _, _ = struct.unpack(">HHHHHH", ans[:12])
    if an != 1 or len(ans) < 4:
        print(f"bad answer {ans!r}", flush=True)
        return 1
    print(".".join(str(b) for b in ans[-4:]), flush=True)
    return 0


def main(argv):
    cmds = {
        "tcp-echo": (tcp_echo, [str, int]),
        "udp-echo": (udp_echo, [str, int]),
        "udp-client": (udp_client, [str, int]),
        "relay": (relay, [int, int]),
        "asyncio-echo": (asyncio_echo, [str, int]),
        "asyncio-client": (asyncio_client, [str, int, int, int]),
        "selectors-echo": (selectors_echo, [str, int]),
        "selectors-client": (selectors_client, [str, int, int, int]),
        "forking-echo": (forking_echo, [str, int]),
        "exec-listen": (exec_listen, [str, int]),
        "exec-connect": (exec_connect, [str, int, int]),
        "inherited-echo": (inherited_echo, [int]),
        "fd-client": (fd_client, [int, int]),
    }
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "hold" and len(argv) == 7:
        return hold(argv[2], int(argv[3]), int(argv[4]), int(argv[5]),
                    argv[6])
    if cmd == "idle" and len(argv) == 5:
        return idle_conn(argv[2], int(argv[3]), argv[4])
    if cmd == "dns-tcp" and len(argv) == 5:
        return dns_tcp(argv[2], int(argv[3]), argv[4])
    if cmd == "dns-slow" and len(argv) in (6, 7):
        return dns_slow(argv[2], int(argv[3]), argv[4], argv[5],
                        len(argv) == 7 and argv[6] == "eof")
    if len(argv) < 2 or argv[1] not in cmds or \
            len(argv) - 2 != len(cmds[argv[1]][1]):
        print(__doc__, file=sys.stderr)
        return 2
    fn, types = cmds[argv[1]]
    return fn(*(t(a) for t, a in zip(types, argv[2:])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
