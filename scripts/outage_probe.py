#!/usr/bin/env python3
"""Measures the console through a PostgreSQL outage (issue 18, goal 4), without touching the shared
cluster: the server reaches PostgreSQL through a TCP proxy in this script, and the "outage" is the
proxy closing every connection and its port (as a stopped server does), then opening it again.

    scripts/outage_probe.py [path/to/tokenbroker]   (default target/release/tokenbroker)

Needs `psql` and PostgreSQL at TB_MEASURE_POSTGRES (default postgres://postgres@127.0.0.1:5432).
Prints: the answers (status, latency) to a signed-in console page every 100 ms during a 5 s outage,
the time from the database's return to the first 200, and the time an instance started while the
database is down takes to answer /healthz (and /readyz) after its process starts.
"""
import os, re, socket, subprocess, sys, tempfile, threading, time, uuid
import requests

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/tokenbroker"
PG = os.environ.get("TB_MEASURE_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_HOST, PG_PORT = "127.0.0.1", int(PG.rsplit(":", 1)[1].split("/")[0])
KEK = "YmVuY2gta2VrLWZvci10b2tlbmJyb2tlci1iZW5jaCE="


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP proxy that can be cut (all connections closed, port closed) and restored."""

    def __init__(self, port):
        self.port, self.conns, self.lock, self.server = port, [], threading.Lock(), None

    def up(self):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(128)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def cut(self):
        server, self.server = self.server, None
        # shutdown() first: a bare close() leaves the port listening while accept() blocks on it.
        try:
            server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        server.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection((PG_HOST, PG_PORT))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def psql(sql):
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True, capture_output=True)


def start(db_url, port, data_dir):
    env = dict(os.environ, TB_DATABASE_URL=db_url, TB_LISTEN=f"127.0.0.1:{port}",
               TB_DATA_DIR=data_dir, TB_KEY_ENCRYPTION_KEY=KEK, TB_LOG_LEVEL="warn",
               TB_PUBLIC_URL=f"http://localhost:{port}")
    return subprocess.Popen([BINARY, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(data_dir, "server.log"), "w"))


def wait_for(url, status=200, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            if requests.get(url, timeout=5).status_code == status:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.02)
    return False


def main():
    db = "tb_outage_" + uuid.uuid4().hex[:8]
    psql(f"CREATE DATABASE {db}")
    proxy = Proxy(free_port())
    proxy.up()
    data_dir = tempfile.mkdtemp()
    db_url = f"postgres://postgres@127.0.0.1:{proxy.port}/{db}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    servers = [start(db_url, port, data_dir)]
    try:
        assert wait_for(f"{base}/readyz"), "server never ready"
        env = dict(os.environ, TB_DATABASE_URL=db_url, TB_DATA_DIR=data_dir, TB_KEY_ENCRYPTION_KEY=KEK)
        subprocess.run([BINARY, "create-admin", "--email", "m@example.com", "--name", "M"],
                       input=b"measure passphrase 1\n", env=env, check=True, capture_output=True)
        browser = requests.Session()
        html = browser.get(f"{base}/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        r = browser.post(f"{base}/login", allow_redirects=False, data={
            "csrf_token": token, "email": "m@example.com", "password": "measure passphrase 1"})
        page = r.headers["location"]  # passkey enrolment: a page that reads the session
        assert browser.get(f"{base}{page}").status_code == 200
        time.sleep(1)

        print(f"outage: {BINARY}; signed-in console page {page}, one request every 100 ms")
        proxy.cut()
        cut_at = time.time()
        answers = []
        while time.time() - cut_at < 5:
            started = time.time()
            try:
                status = browser.get(f"{base}{page}", timeout=15).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            answers.append((round(started - cut_at, 2), status, round((time.time() - started) * 1000)))
            time.sleep(0.1)
        print("  (s after the cut, status, ms):", answers[:6], "...", answers[-2:])
        during = [a for a in answers if a[1] == 503]
        print(f"  {len(answers)} answers; statuses {sorted(set(str(a[1]) for a in answers))}; "
              f"first answer {answers[0][2]} ms; 503s: max {max((a[2] for a in during), default=0)} ms, "
              f"median {sorted(a[2] for a in during)[len(during) // 2] if during else 0} ms")
        proxy.up()
        back_at = time.time()
        recovered = None
        while time.time() - back_at < 20:
            try:
                if browser.get(f"{base}{page}", timeout=15).status_code == 200:
                    recovered = time.time() - back_at
                    break
            except requests.RequestException:
                pass
            time.sleep(0.01)
        print(f"  recovery: first 200 {recovered * 1000 if recovered else float('nan'):.0f} ms after the database returned")

        # An instance started while the database is down.
        proxy.cut()
        port2 = free_port()
        spawned = time.time()
        servers.append(start(db_url, port2, tempfile.mkdtemp()))
        assert wait_for(f"http://127.0.0.1:{port2}/healthz", deadline=30)
        healthz = time.time() - spawned
        ready = requests.get(f"http://127.0.0.1:{port2}/readyz", timeout=15).status_code
        login = requests.get(f"http://127.0.0.1:{port2}/login", timeout=15).status_code
        proxy.up()
        back_at = time.time()
        wait_for(f"http://127.0.0.1:{port2}/readyz", deadline=30)
        print(f"start with the database down: /healthz 200 {healthz * 1000:.0f} ms after spawn "
              f"(/readyz {ready}, /login {login}); ready {(time.time() - back_at) * 1000:.0f} ms after the database returned")
    finally:
        for s in servers:
            s.kill()
            s.wait()
        if proxy.server is None:
            proxy.up()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


main()
