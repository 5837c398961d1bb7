"""upstream.py — a scripted, byte-exact upstream for the torture suite.

What it is: a TCP (optionally TLS) server on 127.0.0.1, port chosen by the
kernel, that plays one script per accepted connection: receive until a marker
or a byte count, send exact bytes (optionally split into pieces with delays),
sleep, half-close, close or reset. Everything each connection received is kept,
so a driver can compare what reached the upstream with and without the agent.

Script steps (tuples; bytes are raw):
  ("until", marker, count)   read until `marker` occurs `count` times in all
                             bytes this connection received so far
  ("bytes", n)               read until n bytes in total were received
  ("idle", secs)             read whatever arrives for secs
  ("send", data[, split[, delay]])  send data; with split, in pieces of that
                             many bytes with `delay` seconds before each piece
  ("sleep", secs)
  ("shut_wr",)               half-close (FIN), keep reading
  ("close",)                 close now (end of script does the same)
  ("rst",)                   close with SO_LINGER 0 (TCP reset)
A read step gives up after STEP_TIMEOUT seconds without a new byte (the
script then ends: the connection is closed), so a swallowed request cannot
hang a run while a large one on a loaded machine is not cut.

Invariants: binds 127.0.0.1 only; every thread is a daemon and every socket
has a timeout, so nothing outlives the driver. Thread safety: one thread per
connection; `received` is appended to under a lock.
"""

import socket
import ssl
import struct
import threading
import time

STEP_TIMEOUT = 4.0


class Upstream:
    def __init__(self, scripts, cert=None, key=None, rcvbuf=None):
        """scripts: list of step lists, one per connection in accept order
        (connections past the list get the last script); rcvbuf: SO_RCVBUF
        of the accepted sockets (a slow uplink: the program's writes wait
        while the upstream does not read)."""
        self.scripts = scripts
        self.received = []        # per connection: bytearray
        self.lock = threading.Lock()
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            self.ctx.set_alpn_protocols(["http/1.1"])
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.stop_flag = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        n = 0
        while not self.stop_flag:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            idx = n
            n += 1
            with self.lock:
                self.received.append(bytearray())
            script = self.scripts[min(idx, len(self.scripts) - 1)] if self.scripts else []
            t = threading.Thread(target=self._serve, args=(s, idx, script), daemon=True)
            t.start()
            self.threads.append(t)

    def _recv_some(self, s, idx, timeout):
        s.settimeout(timeout)
        try:
            d = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return None
        except (OSError, ssl.SSLError):
            return b""
        if d:
            with self.lock:
                self.received[idx] += d
        return d

    def _serve(self, s, idx, script):
        try:
            if self.ctx:
                s.settimeout(STEP_TIMEOUT)
                s = self.ctx.wrap_socket(s, server_side=True)
            self._play(s, idx, script)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _play(self, s, idx, script):
        eof = False
        for step in script:
            op = step[0]
            if op in ("until", "bytes"):
                deadline = time.monotonic() + STEP_TIMEOUT
                while not eof:
                    with self.lock:
                        got = bytes(self.received[idx])
                    if op == "until" and got.count(step[1]) >= step[2]:
                        break
                    if op == "bytes" and len(got) >= step[1]:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return  # gave up: the request never (fully) arrived
                    d = self._recv_some(s, idx, min(left, 0.5))
                    if d == b"":
                        eof = True
                    elif d:
                        deadline = time.monotonic() + STEP_TIMEOUT  # progress: wait on
                if eof and op in ("until", "bytes"):
                    with self.lock:
                        got = bytes(self.received[idx])
                    if (op == "until" and got.count(step[1]) < step[2]) or \
                       (op == "bytes" and len(got) < step[1]):
                        return
            elif op == "idle":
                end = time.monotonic() + step[1]
                while not eof and time.monotonic() < end:
                    d = self._recv_some(s, idx, max(0.01, end - time.monotonic()))
                    if d == b"":
                        eof = True
            elif op == "send":
                data = step[1]
                split = step[2] if len(step) > 2 else None
                delay = step[3] if len(step) > 3 else 0.0
                s.settimeout(STEP_TIMEOUT * 4)
                if not split:
                    s.sendall(data)
                else:
                    for i in range(0, len(data), split):
                        if delay:
                            time.sleep(delay)
                        s.sendall(data[i:i + split])
            elif op == "sleep":
                time.sleep(step[1])
            elif op == "shut_wr":
                if isinstance(s, ssl.SSLSocket):
                    s = s.unwrap()
                s.shutdown(socket.SHUT_WR)
            elif op == "close":
                break
            elif op == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
        # End of script: collect what is still in flight, then close.
        end = time.monotonic() + 0.05
        while not eof and time.monotonic() < end:
            d = self._recv_some(s, idx, 0.02)
            if d == b"":
                break

    def got(self):
        with self.lock:
            return [bytes(b) for b in self.received]

    def close(self):
        self.stop_flag = True
        try:
            self.ls.close()
        except OSError:
            pass
        for t in self.threads:
            t.join(timeout=STEP_TIMEOUT * 5)
        self.acceptor.join(timeout=2)
