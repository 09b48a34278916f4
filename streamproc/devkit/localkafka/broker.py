"""Assemble and run a single-node Apache Kafka broker (KRaft) on 127.0.0.1 without Docker.

The broker's jars come from Maven Central (``pom.xml`` next to this module) and are cached
under ``$STREAMPROC_CACHE`` (default ``~/.cache/streamproc``). The broker runs as a combined
broker+controller node in its own process group; its data, logs and a ``broker.json`` state
file live in one data directory, so another process can query or stop it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.core.exceptions import StreamprocError

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.2"
MIN_JAVA_VERSION = 17
HOST = "127.0.0.1"

_PACKAGE_DIR = Path(__file__).resolve().parent
_POM = _PACKAGE_DIR / "pom.xml"
_LOG4J_CONFIG = _PACKAGE_DIR / "log4j2.properties"

_STATE_FILE = "broker.json"
_CLUSTER_ID_FILE = "cluster-id"
_PROPERTIES_FILE = "server.properties"
_OUT_FILE = "kafka.out"
_LOGS_DIR = "logs"
_DATA_SUBDIR = "kraft-data"
_LOCK_FILE = ".lock"
_COMPLETE_MARKER = "libs.complete"
_SASL_USERS_FILE = "sasl-users.sha256"
_SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_TLS_DIR = "tls"
_CA_FILE = "ca.pem"
_KEYSTORE_FILE = "broker.p12"
_KEYSTORE_PASSWORD_FILE = "keystore.password"
_CERT_DAYS = 825  # what browsers and most TLS stacks still accept for a leaf certificate
# keytool runs seven times: a JVM that starts without the optimising compiler starts faster.
_FAST_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
# Names and passwords go into a JAAS line and the StorageTool's SCRAM syntax unquoted.
_SASL_TOKEN = re.compile(r"[A-Za-z0-9._~@+-]+")

_MVN_TIMEOUT = 1800.0
_TOOL_TIMEOUT = 120.0
_API_VERSIONS_KEY = 18

_JAVA_HINT = (
    "install OpenJDK 17 (apt-get install openjdk-17-jre-headless), "
    "or run Kafka with `docker compose up kafka` instead."
)
_MAVEN_HINT = (
    "install Maven (apt-get install maven), or run Kafka with `docker compose up kafka` instead."
)


class BrokerError(StreamprocError, RuntimeError):
    """The local Kafka broker could not be assembled, started, reached or stopped."""


# --------------------------------------------------------------------------- paths


def default_cache_dir() -> Path:
    """Return the download cache root: ``$STREAMPROC_CACHE`` or ``~/.cache/streamproc``."""
    env = os.environ.get("STREAMPROC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "streamproc"


def default_data_dir() -> Path:
    """Return the CLI data dir: ``$STREAMPROC_DATA_DIR/kafka`` or ``~/.cache/streamproc/run/kafka``.

    Data persists across runs there; tests should pass a fresh directory instead.
    """
    env = os.environ.get("STREAMPROC_DATA_DIR")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "streamproc" / "run"
    return base / "kafka"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block's duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- preconditions


def _java_executable() -> str | None:
    # JAVA_HOME wins over PATH, as in Kafka's own kafka-run-class.sh.
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def _parse_java_major(version_output: str) -> int | None:
    """Return the major version from ``java -version`` output (``"1.8.0_392"`` -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def check_java() -> str:
    """Return the path of a Java 17+ executable.

    Raises
    ------
    BrokerError
        If no ``java`` is found or it is older than 17.
    """
    java = _java_executable()
    if java is None:
        raise BrokerError(
            f"Java {MIN_JAVA_VERSION} or newer is required to run the local Kafka broker: "
            f"{_JAVA_HINT}"
        )
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(
            f"Java {MIN_JAVA_VERSION} or newer is required to run the local Kafka broker "
            f"({java} -version failed: {exc}): {_JAVA_HINT}"
        ) from exc
    # `java -version` prints to stderr; some wrappers use stdout.
    major = _parse_java_major(proc.stderr + proc.stdout)
    if major is None or major < MIN_JAVA_VERSION:
        found = f"Java {major}" if major is not None else "an unrecognised Java"
        raise BrokerError(
            f"Java {MIN_JAVA_VERSION} or newer is required to run the local Kafka broker "
            f"(found {found} at {java}): {_JAVA_HINT}"
        )
    return java


def check_maven() -> str:
    """Return the path of the ``mvn`` executable.

    Raises
    ------
    BrokerError
        If Maven is not on ``PATH``.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"Maven is required to download the local Kafka broker's jars from Maven Central: "
            f"{_MAVEN_HINT}"
        )
    return mvn


# --------------------------------------------------------------------------- assembly


def _pom_digest() -> str:
    return hashlib.sha256(_POM.read_bytes()).hexdigest()


def ensure_kafka(cache_dir: Path | None = None) -> Path:
    """Return a folder holding every jar of the Kafka broker, downloading it on first use.

    Parameters
    ----------
    cache_dir
        Cache root; defaults to :func:`default_cache_dir`. Jars go to
        ``<cache_dir>/kafka-4.1.2/libs``.

    Returns
    -------
    Path
        The ``libs`` folder, suitable for ``-cp "<libs>/*"``.

    Raises
    ------
    BrokerError
        If Maven is missing or the download fails.
    """
    home = (cache_dir or default_cache_dir()).expanduser() / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = home / _COMPLETE_MARKER
    digest = _pom_digest()

    def complete() -> bool:
        # The marker holds the pom's digest, so editing the pom invalidates the cached jars.
        return marker.is_file() and marker.read_text().strip() == digest

    if complete():
        return libs
    with _file_lock(home / _LOCK_FILE):
        # Another process may have finished the download while we waited for the lock.
        if complete():
            return libs
        _assemble(libs, marker, digest)
    return libs


def _assemble(libs: Path, marker: Path, digest: str) -> None:
    mvn = check_maven()
    marker.unlink(missing_ok=True)
    # copy-dependencies never deletes stale jars; two versions of a jar on one classpath break
    # the broker in confusing ways.
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    logger.info(
        "Downloading Kafka %s jars with Maven into %s (first run only)", KAFKA_VERSION, libs
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="streamproc-kafka-pom-") as tmp:
        # Maven writes target/ next to the pom; keep that out of the installed package.
        pom = Path(tmp) / "pom.xml"
        shutil.copyfile(_POM, pom)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=tmp, capture_output=True, text=True, timeout=_MVN_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"Maven did not finish downloading Kafka {KAFKA_VERSION} within "
                f"{_MVN_TIMEOUT:.0f} s; check access to Maven Central and retry."
            ) from exc
    if proc.returncode != 0:
        tail = _tail_text(proc.stdout + proc.stderr, 20)
        raise BrokerError(
            f"Maven could not download Kafka {KAFKA_VERSION} from Maven Central "
            f"(exit code {proc.returncode}); last output:\n{tail}"
        )
    expected = [f"kafka_2.13-{KAFKA_VERSION}.jar", "log4j-slf4j-impl-"]
    names = [p.name for p in libs.glob("*.jar")]
    missing = [e for e in expected if not any(n.startswith(e) for n in names)]
    if missing:
        raise BrokerError(f"Maven finished but {libs} lacks {', '.join(missing)}.")
    # Written last and atomically: a crash mid-download leaves no marker, so it is redone.
    tmp_marker = marker.with_suffix(".tmp")
    tmp_marker.write_text(digest + "\n")
    tmp_marker.replace(marker)
    logger.info(
        "Kafka %s assembled (%d jars) in %.1f s",
        KAFKA_VERSION,
        len(names),
        time.monotonic() - started,
    )


# --------------------------------------------------------------------------- readiness


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bootstrap must look like HOST:PORT, got {bootstrap!r}")
    return host.strip("[]"), int(port)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf.extend(chunk)
    return bytes(buf)


def probe_api_versions(
    bootstrap: str, timeout: float = 2.0, ssl_context: ssl.SSLContext | None = None
) -> bool:
    """Send one ApiVersions v0 request and report whether the broker answered it without error.

    A bare TCP connect is not enough: Kafka binds its listener long before it processes
    requests, so only a real response proves the broker is serving. With ``ssl_context`` the
    request goes over TLS (an SSL or SASL_SSL listener; SASL comes after ApiVersions).
    """
    host, port = _split_bootstrap(bootstrap)
    client_id = b"streamproc-localkafka"
    correlation_id = 0x5354
    # Request header v1: api_key, api_version, correlation_id, client_id (int16-length string).
    payload = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
            if ssl_context is not None:
                sock = stack.enter_context(ssl_context.wrap_socket(sock, server_hostname=host))
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if size < 6:
                return False
            body = _recv_exact(sock, size)
    except (OSError, ConnectionError):
        return False
    # ApiVersions responses always use header v0 (correlation id only), then int16 error_code.
    got_correlation, error_code = struct.unpack(">ih", body[:6])
    return bool(got_correlation == correlation_id and error_code == 0)


def wait_ready(
    bootstrap: str,
    timeout: float = 90.0,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.25,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Block until the Kafka broker at ``bootstrap`` answers an ApiVersions request.

    Works for any broker, including ones this module did not start.

    Parameters
    ----------
    bootstrap
        ``HOST:PORT`` of one broker.
    timeout
        Seconds to wait in total.
    alive
        Optional check called between attempts; when it returns False the wait stops at once.
    interval
        Pause between attempts, in seconds.
    ssl_context
        For a TLS listener: the context that verifies the broker's certificate.

    Raises
    ------
    BrokerError
        On timeout, or when ``alive`` reports the broker process gone.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        wait = max(0.1, min(2.0, remaining))
        if probe_api_versions(bootstrap, timeout=wait, ssl_context=ssl_context):
            return
        if alive is not None and not alive():
            raise BrokerError(f"Kafka broker at {bootstrap} exited before it became ready.")
        if time.monotonic() >= deadline:
            raise BrokerError(f"Kafka broker at {bootstrap} not ready after {timeout:.0f} s.")
        time.sleep(interval)


# --------------------------------------------------------------------------- process helpers


def _free_ports(count: int) -> list[int]:
    # Keep every socket open until all are chosen so the kernel hands out distinct ports.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the broker's own listener does: connections of a stopped broker lingering in
        # TIME_WAIT must not make its port look taken when it restarts.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    # Reap the broker if it is our own child, otherwise a zombie would look alive forever.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str | None:
    proc_file = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            return proc_file.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    try:
        out = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is alive and is the broker of ``data_dir``.

    A stale ``broker.json`` (e.g. after a reboot) may name a pid now used by something else;
    signalling that process group would be a disaster, so the command line must match.
    """
    if not _pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    return (
        cmdline is not None
        and "kafka.Kafka" in cmdline
        and str(data_dir / _PROPERTIES_FILE) in cmdline
    )


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int = 20) -> str:
    try:
        return _tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return ""


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((data_dir / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def _write_state(data_dir: Path, state: dict[str, Any]) -> None:
    tmp = data_dir / (_STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(data_dir / _STATE_FILE)


def _previous_ports(data_dir: Path) -> tuple[int, int] | None:
    """Return the (client, controller) ports of the last start in ``data_dir``, if any."""
    try:
        text = (data_dir / _PROPERTIES_FILE).read_text()
    except OSError:
        return None
    match = re.search(
        r"^listeners=PLAINTEXT://[^:,]+:(\d+),CONTROLLER://[^:,]+:(\d+)(?:,\S+)?$",
        text,
        re.MULTILINE,
    )
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class _SaslListener:
    """A SASL_PLAINTEXT client listener: its port and its users (name -> password)."""

    port: int
    users: Mapping[str, str]

    def __repr__(self) -> str:  # never the passwords
        return f"_SaslListener(port={self.port}, users={sorted(self.users)})"

    @staticmethod
    def check(users: Mapping[str, str]) -> None:
        if not users:
            raise ValueError("sasl_users is empty: give at least one {name: password}.")
        for name, password in users.items():
            for what, value in (("user name", name), ("password", password)):
                if not isinstance(value, str) or not _SASL_TOKEN.fullmatch(value):
                    shown = repr(value) if what == "user name" else "of user " + repr(name)
                    raise ValueError(
                        f"SASL {what} {shown} must be letters, digits and ._~@+- only "
                        "(the local broker writes it unquoted)."
                    )

    def properties(self, listener: str = "sasl_plaintext") -> dict[str, str]:
        """The broker settings of a SASL listener: PLAIN users in JAAS, SCRAM from the metadata."""
        prefix = f"listener.name.{listener}"
        plain = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        # OAUTHBEARER with Kafka's default server callback, the unsecured validator: it accepts
        # any unsigned JWT ({"alg":"none"}, a `sub` and an `exp`). For tests of the clients'
        # token handling only; a real cluster validates signed tokens against its issuer.
        oauth = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
        return {
            f"{prefix}.sasl.enabled.mechanisms": ",".join(
                ("PLAIN", *_SCRAM_MECHANISMS, "OAUTHBEARER")
            ),
            f"{prefix}.oauthbearer.sasl.jaas.config": oauth,
            f"{prefix}.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain};"
            ),
            **{f"{prefix}.{m.lower()}.sasl.jaas.config": scram for m in _SCRAM_MECHANISMS},
        }

    def scram_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create every user for both SCRAM mechanisms."""
        return [
            f"--add-scram={m}=[name={name},password={password}]"
            for name, password in self.users.items()
            for m in _SCRAM_MECHANISMS
        ]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(sorted(self.users.items())).encode()).hexdigest()


@dataclass(frozen=True)
class _TlsListener:
    """An SSL client listener, and a SASL_SSL one with the SASL users; the broker's key store."""

    port: int
    sasl_port: int | None
    keystore: Path
    password: str
    ca_file: Path

    def __repr__(self) -> str:  # never the key store's password
        return f"_TlsListener(port={self.port}, sasl_port={self.sasl_port}, ca={self.ca_file})"

    def context(self) -> ssl.SSLContext:
        """A client context that trusts the broker's CA (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def properties(self) -> dict[str, str]:
        return {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.password,
            "ssl.key.password": self.password,
            "ssl.client.auth": "none",
        }


def _keytool(java: str) -> str:
    # The keytool of the JDK that runs the broker, else the one on PATH.
    beside = Path(java).resolve().parent / "keytool"
    tool = str(beside) if beside.is_file() else shutil.which("keytool")
    if tool is None:
        raise BrokerError(
            "keytool (part of the JDK) is required to make the local broker's TLS certificates: "
            f"{_JAVA_HINT}"
        )
    return tool


def _make_certificates(java: str, folder: Path) -> tuple[Path, str, Path]:
    """A CA, and a broker key and certificate it signs for 127.0.0.1 and localhost, made once.

    Made with the JDK's keytool: a PKCS12 key store for the broker (its key, its certificate and
    the CA's) and the CA certificate in PEM for the clients (``STREAMPROC_SSL_CAFILE``). The CA's
    own key is deleted once it signed. Kept in ``folder`` so a restarted broker keeps them.

    Returns
    -------
    tuple
        (key store, its password, CA certificate file).
    """
    keystore, ca_file = folder / _KEYSTORE_FILE, folder / _CA_FILE
    password_file = folder / _KEYSTORE_PASSWORD_FILE
    if keystore.is_file() and ca_file.is_file() and password_file.is_file():
        return keystore, password_file.read_text().strip(), ca_file
    if folder.exists():
        shutil.rmtree(folder)  # a half-made set from an interrupted start
    folder.mkdir(mode=0o700, parents=True)
    tool, password = _keytool(java), secrets.token_urlsafe(18)
    ca_store, csr, cert = folder / "ca.p12", folder / "broker.csr", folder / "broker.pem"
    store = ["-storetype", "PKCS12", "-storepass", password]
    key = ["-keyalg", "RSA", "-keysize", "2048", "-validity", str(_CERT_DAYS)]
    san = "SAN=ip:127.0.0.1,dns:localhost"
    steps = [
        ["-genkeypair", "-alias", "ca", *key, "-dname", "CN=streamproc local Kafka CA",
         "-ext", "bc:c", "-keystore", ca_store, *store],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca_store, *store, "-file", ca_file],
        ["-genkeypair", "-alias", "broker", *key, "-dname", "CN=localhost", "-ext", san,
         "-keystore", keystore, *store],
        ["-certreq", "-alias", "broker", "-keystore", keystore, *store, "-file", csr],
        ["-gencert", "-alias", "ca", "-keystore", ca_store, *store, "-infile", csr,
         "-outfile", cert, "-rfc", "-validity", str(_CERT_DAYS), "-ext", san,
         "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth"],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", ca_file, "-keystore", keystore,
         *store],
        ["-importcert", "-noprompt", "-alias", "broker", "-file", cert, "-keystore", keystore,
         *store],
    ]  # fmt: skip
    started = time.monotonic()
    for step in steps:
        try:
            proc = subprocess.run(
                [tool, *_FAST_JVM, *map(str, step)],
                capture_output=True,
                text=True,
                timeout=_TOOL_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"keytool {step[0]} failed to run: {exc}") from exc
        if proc.returncode != 0:
            raise BrokerError(
                f"keytool {step[0]} failed (exit code {proc.returncode}):\n"
                f"{_tail_text(proc.stdout + proc.stderr, 10)}"
            )
    for scratch in (ca_store, csr, cert):
        scratch.unlink()
    password_file.touch(mode=0o600)
    password_file.write_text(password + "\n")  # last: its presence marks a complete set
    logger.info("TLS certificates made with keytool in %.1f s", time.monotonic() - started)
    return keystore, password, ca_file


def _server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    sasl: _SaslListener | None = None,
    tls: _TlsListener | None = None,
) -> str:
    settings = {
        # One combined KRaft node with static voters.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / _DATA_SUBDIR),
        # Internal topics default to replication factor 3 and would never be created.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # 50 partitions per internal topic make the first group join / transaction slow.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # The default 3 s delay is paid on every consumer group join.
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "1",
        # The project creates its topics explicitly; typos should fail instead of creating topics.
        "auto.create.topics.enable": "false",
        # The default 128 MiB dedupe buffer is allocated at start and dwarfs a test's needs.
        "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    if sasl is not None:
        # Clients may also log in on a SASL listener; the broker and controller keep PLAINTEXT.
        settings["listeners"] += f",SASL_PLAINTEXT://{HOST}:{sasl.port}"
        settings["advertised.listeners"] += f",SASL_PLAINTEXT://{HOST}:{sasl.port}"
        settings["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        settings.update(sasl.properties())
    if tls is not None:
        extra = [("SSL", tls.port)]
        if tls.sasl_port is not None and sasl is not None:
            extra.append(("SASL_SSL", tls.sasl_port))
            settings.update(sasl.properties("sasl_ssl"))
        for name, listener_port in extra:
            settings["listeners"] += f",{name}://{HOST}:{listener_port}"
            settings["advertised.listeners"] += f",{name}://{HOST}:{listener_port}"
            settings["listener.security.protocol.map"] += f",{name}:{name}"
        settings.update(tls.properties())
    lines = [
        f"# Written by streamproc.devkit.localkafka for Kafka {KAFKA_VERSION}; rewritten on start."
    ]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- broker


class LocalKafka:
    """A single-node KRaft Kafka broker on 127.0.0.1, run as a child JVM.

    Parameters
    ----------
    cache_dir
        Cache root for the jars; see :func:`ensure_kafka`.
    heap
        JVM maximum heap (``-Xmx``).

    Examples
    --------
    >>> broker = LocalKafka()  # doctest: +SKIP
    >>> bootstrap = broker.start(data_dir=tmp_path / "kafka")  # doctest: +SKIP
    >>> broker.stop()  # doctest: +SKIP
    """

    def __init__(self, cache_dir: Path | None = None, heap: str = "512m") -> None:
        self.cache_dir = cache_dir
        self.heap = heap
        self.data_dir: Path | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self.sasl_port: int | None = None
        self.ssl_port: int | None = None
        self.sasl_ssl_port: int | None = None
        self.ca_file: Path | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str | None:
        """``127.0.0.1:PORT`` once started, else None."""
        return f"{HOST}:{self.port}" if self.port is not None else None

    @property
    def sasl_bootstrap(self) -> str | None:
        """``127.0.0.1:PORT`` of the SASL_PLAINTEXT listener when started with ``sasl_users``."""
        return f"{HOST}:{self.sasl_port}" if self.sasl_port is not None else None

    @property
    def ssl_bootstrap(self) -> str | None:
        """``127.0.0.1:PORT`` of the SSL listener when started with ``tls``."""
        return f"{HOST}:{self.ssl_port}" if self.ssl_port is not None else None

    @property
    def sasl_ssl_bootstrap(self) -> str | None:
        """``127.0.0.1:PORT`` of the SASL_SSL listener when started with ``tls`` and users."""
        return f"{HOST}:{self.sasl_ssl_port}" if self.sasl_ssl_port is not None else None

    def start(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        timeout: float = 90,
        sasl_users: Mapping[str, str] | None = None,
        tls: bool = False,
    ) -> str:
        """Start the broker and wait until it serves requests.

        Parameters
        ----------
        port
            Client (PLAINTEXT) port; a free one is picked when None, preferring the port the same
            data dir used last time so bootstrap addresses survive restarts.
        data_dir
            Holds logs, topic data and state; defaults to :func:`default_data_dir`. Reusing a
            directory keeps its topics and cluster id.
        timeout
            Seconds to wait for readiness.
        sasl_users
            ``{name: password}``: also open a SASL_PLAINTEXT listener on a free port
            (:attr:`sasl_bootstrap`) that accepts these users with PLAIN, SCRAM-SHA-256 and
            SCRAM-SHA-512, and any unsigned JWT with OAUTHBEARER (Kafka's unsecured
            validator). The PLAINTEXT listener stays, for the broker itself and for tools.
            SCRAM users are stored when the data dir is formatted, so a reused data dir must
            be given the same users.
        tls
            Also open an SSL listener (:attr:`ssl_bootstrap`) and, with ``sasl_users``, a
            SASL_SSL one (:attr:`sasl_ssl_bootstrap`), with a certificate for 127.0.0.1 signed
            by a CA made for this data dir with the JDK's keytool; clients trust
            :attr:`ca_file` (``STREAMPROC_SSL_CAFILE``). Made once per data dir, a few seconds.

        Returns
        -------
        str
            The bootstrap address ``127.0.0.1:PORT`` of the PLAINTEXT listener.

        Raises
        ------
        BrokerError
            If prerequisites are missing, a broker already runs in ``data_dir``, or the broker
            dies or does not become ready in time.
        """
        if self._proc is not None and self._proc.poll() is None:
            raise BrokerError(f"This LocalKafka already runs a broker at {self.bootstrap}.")
        if sasl_users is not None:
            _SaslListener.check(sasl_users)
        java = check_java()
        libs = ensure_kafka(self.cache_dir)
        data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # Serialises starts in one data dir across processes (e.g. parallel test runs).
        with _file_lock(data_dir / _LOCK_FILE):
            previous = _read_state(data_dir)
            if previous is not None and _is_our_broker(previous["pid"], data_dir):
                raise BrokerError(
                    f"A Kafka broker already runs from {data_dir} at {previous.get('bootstrap')} "
                    f"(pid {previous['pid']}); stop it first."
                )
            port, controller_port = self._choose_ports(port, _previous_ports(data_dir))
            spare = iter(p for p in _free_ports(5) if p not in (port, controller_port))
            sasl = None
            if sasl_users is not None:
                sasl = _SaslListener(next(spare), dict(sasl_users))
            tls_listener = None
            if tls:
                keystore, password, ca_file = _make_certificates(java, data_dir / _TLS_DIR)
                sasl_ssl_port = next(spare) if sasl is not None else None
                tls_listener = _TlsListener(next(spare), sasl_ssl_port, keystore, password, ca_file)
            return self._launch(
                java, libs, data_dir, port, controller_port, timeout, sasl, tls_listener
            )

    @staticmethod
    def _choose_ports(port: int | None, previous: tuple[int, int] | None) -> tuple[int, int]:
        if port is None and previous is not None and all(_port_free(p) for p in previous):
            return previous
        if port is None:
            port, controller_port = _free_ports(2)
            return port, controller_port
        # Fail here with a clear message rather than from inside the JVM's bind error.
        if not _port_free(port):
            raise BrokerError(
                f"Port {port} on {HOST} is already in use; pick another or pass None."
            )
        controller_port = next(p for p in _free_ports(2) if p != port)
        return port, controller_port

    def _java_base(self, java: str, libs: Path, data_dir: Path) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            # Log4j's own hook would stop logging before Kafka's shutdown hook runs, losing the
            # shutdown log and printing "Unable to register Log4j shutdown hook" to stderr.
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dkafka.logs.dir={data_dir / _LOGS_DIR}",
            "-cp",
            # The JVM expands the wildcard itself; no shell is involved.
            f"{libs}/*",
        ]

    def _run_tool(self, base: list[str], args: list[str], data_dir: Path) -> str:
        cmd = [*base, "kafka.tools.StorageTool", *args]
        try:
            proc = subprocess.run(
                cmd,
                cwd=data_dir,
                capture_output=True,
                text=True,
                timeout=_TOOL_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(
                f"Kafka StorageTool {args[0]} timed out after {_TOOL_TIMEOUT:.0f} s."
            ) from exc
        if proc.returncode != 0:
            raise BrokerError(
                f"Kafka StorageTool {args[0]} failed (exit code {proc.returncode}):\n"
                f"{_tail_text(proc.stdout + proc.stderr, 20)}"
            )
        return proc.stdout

    def _cluster_id(self, base: list[str], data_dir: Path) -> str:
        id_file = data_dir / _CLUSTER_ID_FILE
        if id_file.is_file():
            return id_file.read_text().strip()
        out = self._run_tool(base, ["random-uuid"], data_dir)
        # Take only a token shaped like a Kafka Uuid, in case anything else reaches stdout.
        ids: list[str] = re.findall(r"^[A-Za-z0-9_-]{22}$", out, flags=re.MULTILINE)
        if not ids:
            raise BrokerError(f"Kafka StorageTool random-uuid printed no cluster id: {out!r}")
        id_file.write_text(ids[-1] + "\n")
        return ids[-1]

    def _launch(
        self,
        java: str,
        libs: Path,
        data_dir: Path,
        port: int,
        controller_port: int,
        timeout: float,
        sasl: _SaslListener | None = None,
        tls: _TlsListener | None = None,
    ) -> str:
        started = time.monotonic()
        properties = data_dir / _PROPERTIES_FILE
        if sasl is not None or tls is not None:  # PLAIN and key store passwords go in there
            properties.touch(mode=0o600)
            properties.chmod(0o600)
        properties.write_text(_server_properties(data_dir, port, controller_port, sasl, tls))
        (data_dir / _LOGS_DIR).mkdir(exist_ok=True)
        base = self._java_base(java, libs, data_dir)
        cluster_id = self._cluster_id(base, data_dir)
        users_file = data_dir / _SASL_USERS_FILE
        # meta.properties means already formatted; skipping saves a JVM start on every restart.
        if not (data_dir / _DATA_SUBDIR / "meta.properties").is_file():
            self._run_tool(
                base,
                [
                    "format",
                    f"--cluster-id={cluster_id}",
                    "--config",
                    str(properties),
                    "--ignore-formatted",
                    *(sasl.scram_args() if sasl is not None else []),
                ],
                data_dir,
            )
            users_file.unlink(missing_ok=True)
            if sasl is not None:
                users_file.write_text(sasl.digest() + "\n")
        elif sasl is not None and (
            not users_file.is_file() or users_file.read_text().strip() != sasl.digest()
        ):
            raise BrokerError(
                f"{data_dir} was formatted with other SASL users; SCRAM users are stored when a "
                "data dir is formatted: start with the same sasl_users, or a fresh data dir."
            )
        out_path = data_dir / _OUT_FILE
        with out_path.open("wb") as out:
            # Own session: Ctrl-C in a terminal or pytest's signal handling must not hit the JVM,
            # and stop() can signal the whole group.
            self._proc = subprocess.Popen(
                [*base, "kafka.Kafka", str(properties)],
                cwd=data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.data_dir, self.port, self.controller_port = data_dir, port, controller_port
        self.sasl_port = sasl.port if sasl is not None else None
        self.ssl_port = tls.port if tls is not None else None
        self.sasl_ssl_port = tls.sasl_port if tls is not None else None
        self.ca_file = tls.ca_file if tls is not None else None
        self.pid = self._proc.pid
        bootstrap = f"{HOST}:{port}"
        # (address, TLS context) of every client listener, each probed until it answers.
        listeners: list[tuple[str, ssl.SSLContext | None]] = [(bootstrap, None)]
        if sasl is not None:
            listeners.append((f"{HOST}:{sasl.port}", None))
        if tls is not None:
            listeners.append((f"{HOST}:{tls.port}", tls.context()))
            if tls.sasl_port is not None:
                listeners.append((f"{HOST}:{tls.sasl_port}", tls.context()))
        # Written before the wait so another process can already stop a broker that hangs.
        _write_state(
            data_dir,
            {
                "pid": self.pid,
                "port": port,
                "controller_port": controller_port,
                "bootstrap": bootstrap,
                "cluster_id": cluster_id,
                "data_dir": str(data_dir),
                "kafka_version": KAFKA_VERSION,
                "started_at": time.time(),
                **(
                    {"sasl_port": sasl.port, "sasl_bootstrap": f"{HOST}:{sasl.port}"}
                    if sasl is not None
                    else {}
                ),
                **(
                    {
                        "ssl_bootstrap": f"{HOST}:{tls.port}",
                        "sasl_ssl_bootstrap": (
                            f"{HOST}:{tls.sasl_port}" if tls.sasl_port is not None else None
                        ),
                        "ca_file": str(tls.ca_file),
                    }
                    if tls is not None
                    else {}
                ),
            },
        )
        logger.info(
            "Starting Kafka %s (pid %d) at %s in %s", KAFKA_VERSION, self.pid, bootstrap, data_dir
        )
        ready_by = time.monotonic() + timeout
        try:
            for listener, context in listeners:  # ApiVersions is answered before SASL
                wait_ready(
                    listener,
                    timeout=max(1.0, ready_by - time.monotonic()),
                    alive=lambda: self._proc is not None and self._proc.poll() is None,
                    ssl_context=context,
                )
        except BrokerError as exc:
            code = self._proc.poll()
            tail = _tail_file(out_path) or _tail_file(data_dir / _LOGS_DIR / "server.log")
            self.stop(timeout=10)
            reason = (
                f"exited with code {code}"
                if code is not None
                else f"was not ready after {timeout:.0f} s"
            )
            raise BrokerError(
                f"Kafka broker {reason} (logs in {data_dir}); last lines of {_OUT_FILE}:\n{tail}"
            ) from exc
        logger.info("Kafka ready at %s after %.1f s", bootstrap, time.monotonic() - started)
        return bootstrap

    def is_running(self) -> bool:
        """Whether the broker process started by :meth:`start` is still alive."""
        if self._proc is not None:
            return self._proc.poll() is None
        return (
            self.pid is not None
            and self.data_dir is not None
            and _is_our_broker(self.pid, self.data_dir)
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker: SIGTERM to its process group, then SIGKILL after ``timeout`` seconds."""
        if self.pid is None or self.data_dir is None:
            return
        if self.is_running():
            _terminate_group(self.pid, timeout, self._proc)
        elif self._proc is not None:
            self._proc.wait()
        state = _read_state(self.data_dir)
        if state is not None and state.get("pid") == self.pid:
            (self.data_dir / _STATE_FILE).unlink(missing_ok=True)
        self._proc = None


def _terminate_group(pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group led by ``pid``, escalating to SIGKILL after ``timeout`` seconds."""

    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not _pid_alive(pid)

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if gone():
                return True
            time.sleep(0.1)
        return gone()

    # The broker leads its own session (start_new_session), so its pgid equals its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if wait(timeout):
        logger.info("Kafka broker (pid %d) stopped", pid)
        return
    logger.warning("Kafka broker (pid %d) ignored SIGTERM for %.0f s; killing it", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if not wait(10):
        raise BrokerError(f"Kafka broker (pid {pid}) survived SIGKILL.")


# --------------------------------------------------------------------------- CLI helpers


def broker_status(data_dir: Path | None = None) -> dict[str, Any] | None:
    """Describe the broker running from ``data_dir``, or return None when none runs.

    Returns
    -------
    dict or None
        The ``broker.json`` state (pid, port, controller_port, bootstrap, ...) plus ``ready``:
        whether it answers requests right now.
    """
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    state = _read_state(data_dir)
    if state is None or not _is_our_broker(state["pid"], data_dir):
        return None
    state["ready"] = probe_api_versions(str(state.get("bootstrap", "")), timeout=1.0)
    return state


def start_broker(port: int | None = None, data_dir: Path | None = None) -> str:
    """Start a detached broker in ``data_dir`` (or reuse the one running there).

    Returns
    -------
    str
        The bootstrap address ``127.0.0.1:PORT``.

    Raises
    ------
    BrokerError
        If it cannot start, or a broker already runs there on a different port.
    """
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    status = broker_status(data_dir)
    if status is not None:
        if port is not None and status.get("port") != port:
            raise BrokerError(
                f"A Kafka broker already runs from {data_dir} at {status['bootstrap']}, "
                f"not on port {port}; stop it first."
            )
        bootstrap = str(status["bootstrap"])
        wait_ready(bootstrap, timeout=90, alive=lambda: _is_our_broker(status["pid"], data_dir))
        logger.info("Kafka already running at %s (pid %d)", bootstrap, status["pid"])
        return bootstrap
    return LocalKafka().start(port=port, data_dir=data_dir)


def stop_broker(data_dir: Path | None = None, timeout: float = 30) -> bool:
    """Stop the broker running from ``data_dir``; return False when none was running."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    state = _read_state(data_dir)
    if state is None:
        return False
    running = _is_our_broker(state["pid"], data_dir)
    if running:
        _terminate_group(state["pid"], timeout)
    (data_dir / _STATE_FILE).unlink(missing_ok=True)
    return running
