"""client.py — the program under test in the torture suite (run with and
without the agent preloaded).

What it is: a raw HTTP/1.x client that writes exact request bytes and reads
everything the connection delivers until end of stream, an error or its
deadline, through one of several I/O models:
  block     blocking socket, recv(read_size)
  rcvtimeo  blocking socket with SO_RCVTIMEO (`rcvtimeo` seconds); EAGAIN
            ends the read loop only after `deadline`
  poll      non-blocking socket, poll() for readiness (writes too)
  epoll     non-blocking socket, epoll (level-triggered)
  select    non-blocking socket, select()
  ppoll     non-blocking socket, ppoll() (through ctypes: the hooked symbol);
            with `sigtest`, the first read wait is ppoll_sigtest (signal mask
            semantics; sig_woke in the result)
  pselect   non-blocking socket, pselect() (through ctypes)
  pollblock BLOCKING socket without SO_RCVTIMEO; every read waits in
            poll(POLLIN, poll_tmo) first and reads only when told readable
            (a program that bounds its reads with poll timeouts)
  epollblock the same with epoll_wait(poll_tmo) as the wait
  asyncio   asyncio streams (epoll loop; plain or memory-BIO TLS); max_call is
            the longest stall of the event loop
The spec is one JSON document on stdin: port, tls (+ ca), io, send ([base64, delay]
pieces), shut_wr (half-close after sending), read_size, read_delay, rcvtimeo, rcvbuf, sndbuf, wapi (send | sendmsg | write),
rapi (recv | recvmsg | recv_into | read), poll_tmo (longest single readiness
wait, default 0.5 s), read_tmo (the read phase gives up this many seconds
after the last write returned, like a program's response timeout), no_read ("close": close
and exit without reading, "_exit": os._exit without closing),
deadline. It prints one JSON line: recv (base64), end ("eof" | "reset" |
"timeout" | "error:<name>"), elapsed, max_call (the longest single socket
call, seconds: poll/epoll/select waits excluded, their own timeout
included), and exits 0.

Invariant: every wait is bounded by `deadline`. Runs under /usr/bin/python3.
"""

import base64
import errno
import os
import json
import select
import socket
import ssl
import sys
import time


def _libc_waits():
    """ppoll and pselect as the program's own calls: CDLL(None) resolves them
    in the global scope, so a preloaded agent's hooks are the ones called."""
    import ctypes

    class PollFd(ctypes.Structure):
        _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short),
                    ("revents", ctypes.c_short)]

    class TimeSpec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    class FdSet(ctypes.Structure):
        _fields_ = [("bits", ctypes.c_ulong * 16)]

    libc = ctypes.CDLL(None, use_errno=True)

    def ts(secs):
        return TimeSpec(int(secs), int((secs - int(secs)) * 1e9))

    def ppoll(fd, events, secs):
        p = PollFd(fd, events, 0)
        t = ts(secs)
        r = libc.ppoll(ctypes.byref(p), 1, ctypes.byref(t), None)
        return r > 0

    def pselect(fd, out, secs):
        s = FdSet()
        s.bits[fd // 64] |= 1 << (fd % 64)
        t = ts(secs)
        rd, wr = (None, ctypes.byref(s)) if out else (ctypes.byref(s), None)
        r = libc.pselect(fd + 1, rd, wr, None, ctypes.byref(t), None)
        return r > 0

    def ppoll_sigtest(fd, secs):
        """One ppoll on fd and a signal wake-up pipe, with a mask that blocks
        SIGUSR1 (normally unblocked) while another thread sends SIGUSR1 to
        this one after 0.2 s. The signal must not be taken during the wait
        (its mask blocks it): True when the handler ran inside the wait (its
        wake-up byte made the pipe readable there)."""
        import signal
        import threading
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        old = signal.signal(signal.SIGUSR1, lambda *a: None)
        old_fd = signal.set_wakeup_fd(w)
        mask = (ctypes.c_ulong * 16)()
        libc.sigemptyset(ctypes.byref(mask))
        libc.sigaddset(ctypes.byref(mask), signal.SIGUSR1)
        me = threading.get_ident()
        timer = threading.Timer(0.2, lambda: signal.pthread_kill(me, signal.SIGUSR1))
        fds = (PollFd * 2)(PollFd(fd, select.POLLIN, 0), PollFd(r, select.POLLIN, 0))
        t = ts(secs)
        timer.start()
        libc.ppoll(fds, 2, ctypes.byref(t), ctypes.byref(mask))
        woke = bool(fds[1].revents & select.POLLIN)
        timer.join()
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGUSR1, old)
        os.close(r)
        os.close(w)
        return woke

    return ppoll, pselect, ppoll_sigtest


def run_asyncio(spec):
    """An asyncio program (streams, plain or TLS): writes the pieces, drains,
    reads to the end; max_call is the longest stall of its event loop (a
    10 ms ticker), so an agent blocking inside a socket call shows up."""
    import asyncio

    async def body():
        loop = asyncio.get_running_loop()
        worst = [0.0]
        stop = [False]

        async def ticker():
            last = loop.time()
            while not stop[0]:
                await asyncio.sleep(0.01)
                now = loop.time()
                worst[0] = max(worst[0], now - last - 0.01)
                last = now

        t = asyncio.create_task(ticker())
        ctx = None
        if spec.get("tls"):
            import ssl as _ssl
            ctx = _ssl.create_default_context(cafile=spec["ca"])
        r, w = await asyncio.open_connection("127.0.0.1", spec["port"], ssl=ctx,
                                             server_hostname="127.0.0.1" if ctx else None)
        for piece, delay in spec.get("send", []):
            if delay:
                await asyncio.sleep(delay)
            w.write(base64.b64decode(piece))
            await w.drain()
        got = bytearray()
        end = None
        while end is None:
            try:
                d = await asyncio.wait_for(r.read(spec.get("read_size", 65536)),
                                           spec.get("deadline", 5.0))
            except asyncio.TimeoutError:
                end = "timeout"
                break
            except ConnectionResetError:
                end = "reset"
                break
            except OSError as e:
                end = "error:" + type(e).__name__
                break
            if not d:
                end = "eof"
                break
            got += d
        stop[0] = True
        await t
        w.close()
        return got, end, worst[0]

    t0 = time.monotonic()
    got, end, worst = asyncio.run(body())
    print(json.dumps({"recv": base64.b64encode(bytes(got)).decode(), "end": end,
                      "elapsed": round(time.monotonic() - t0, 3), "max_call": round(worst, 3)}))


def main():
    spec = json.loads(sys.stdin.read())
    if spec.get("io") == "asyncio":
        return run_asyncio(spec)
    io = spec.get("io", "block")
    deadline = time.monotonic() + spec.get("deadline", 5.0)
    read_size = spec.get("read_size", 65536)
    stats = {"max_call": 0.0}
    t0 = time.monotonic()

    def timed(fn, *a):
        s = time.monotonic()
        try:
            return fn(*a)
        finally:
            stats["max_call"] = max(stats["max_call"], time.monotonic() - s)

    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if spec.get("rcvbuf"):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, spec["rcvbuf"])
    if spec.get("sndbuf"):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, spec["sndbuf"])
    raw.settimeout(5)
    raw.connect(("127.0.0.1", spec["port"]))
    raw.settimeout(None)
    sock = raw
    if spec.get("tls"):
        ctx = ssl.create_default_context(cafile=spec["ca"])
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    if io == "rcvtimeo":
        t = spec.get("rcvtimeo", 0.5)
        tv = int(t) .to_bytes(8, "little") + int((t - int(t)) * 1e6).to_bytes(8, "little")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    nonblock = io in ("poll", "epoll", "select", "ppoll", "pselect")
    poll_tmo = spec.get("poll_tmo", 0.5)
    ppoll_fn, pselect_fn, sigtest_fn = (_libc_waits() if io in ("ppoll", "pselect")
                                        else (None, None, None))
    sig_woke = None
    if nonblock:
        sock.setblocking(False)
    ep = select.epoll() if io in ("epoll", "epollblock") else None
    if ep:
        ep.register(sock.fileno(), select.EPOLLIN)

    def wait(events_out):
        """Wait for readability (or writability); bounded by the deadline."""
        left = max(0.0, deadline - time.monotonic())
        tmo = min(left, poll_tmo)
        if io == "ppoll":
            return ppoll_fn(sock.fileno(), select.POLLOUT if events_out else select.POLLIN, tmo)
        if io == "pselect":
            return pselect_fn(sock.fileno(), events_out, tmo)
        if io in ("poll", "pollblock"):
            p = select.poll()
            p.register(sock.fileno(), select.POLLOUT if events_out else select.POLLIN)
            return bool(p.poll(int(tmo * 1000)))
        if io in ("epoll", "epollblock"):
            ep.modify(sock.fileno(), select.EPOLLOUT if events_out else select.EPOLLIN)
            return bool(ep.poll(tmo))
        r, w, _ = select.select([] if events_out else [sock], [sock] if events_out else [], [], tmo)
        return bool(r or w)

    wapi, rapi = spec.get("wapi", "send"), spec.get("rapi", "recv")
    tls = bool(spec.get("tls"))

    def do_send(data):
        if tls or wapi == "send":
            return sock.send(data)
        if wapi == "sendmsg":  # two buffers: sendmsg/writev path
            h = len(data) // 2
            return sock.sendmsg([data[:h], data[h:]])
        return os.write(sock.fileno(), data)  # write(2)

    def do_recv(n):
        if tls or rapi == "recv":
            return sock.recv(n)
        if rapi == "recvmsg":
            return sock.recvmsg(n)[0]
        if rapi == "recv_into":
            b = bytearray(n)
            k = sock.recv_into(b)
            return bytes(b[:k])
        return os.read(sock.fileno(), n)  # read(2)

    end = None
    # ---- write
    for piece, delay in spec.get("send", []):
        if delay:
            time.sleep(delay)
        data = base64.b64decode(piece)
        while data and end is None:
            if time.monotonic() > deadline:
                end = "timeout"
                break
            try:
                n = timed(do_send, data)
                data = data[n:]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                wait(True)
            except OSError as e:
                end = "error:" + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__)
    if spec.get("shut_wr") and end is None and not spec.get("tls"):
        sock.shutdown(socket.SHUT_WR)
    if spec.get("no_read"):
        # leave right after writing: the request must still reach the upstream
        print(json.dumps({"recv": "", "end": "noread", "elapsed": round(time.monotonic() - t0, 3),
                          "max_call": round(stats["max_call"], 3)}), flush=True)
        if spec["no_read"] == "_exit":
            os._exit(0)
        sock.close()
        return
    if spec.get("read_tmo"):
        deadline = min(deadline, time.monotonic() + spec["read_tmo"])
    if spec.get("read_delay"):
        time.sleep(spec["read_delay"])
    # ---- read
    if spec.get("sigtest") and sigtest_fn:
        sig_woke = sigtest_fn(sock.fileno(), 1.0)
    got = bytearray()
    while end is None:
        if time.monotonic() > deadline:
            end = "timeout"
            break
        if io in ("pollblock", "epollblock") and not (tls and sock.pending()) and not wait(False):
            continue  # the program's poll timed out: it polls again (until the deadline)
        try:
            d = timed(do_recv, read_size)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            if nonblock:
                wait(False)
            continue
        except ConnectionResetError:
            end = "reset"
            break
        except ssl.SSLEOFError:
            end = "eof"
            break
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                continue  # SO_RCVTIMEO expired: try again until the deadline
            end = "error:" + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__)
            break
        if not d:
            end = "eof"
            break
        got += d
    print(json.dumps({"recv": base64.b64encode(bytes(got)).decode(), "end": end,
                      "elapsed": round(time.monotonic() - t0, 3),
                      "max_call": round(stats["max_call"], 3), "sig_woke": sig_woke}))
    sock.close()


if __name__ == "__main__":
    main()
