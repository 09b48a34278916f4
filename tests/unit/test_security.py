"""TLS / SASL settings without a broker: environment parsing, the password file, masking,
validation messages, and what aiokafka, faust and the local broker are handed."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism

from streamproc.client import DeploymentWatcher, MetricLogger
from streamproc.config import Settings
from streamproc.devkit.harness import free_port
from streamproc.devkit.localkafka import LocalKafka
from streamproc.devkit.localkafka.broker import (
    _previous_ports,
    _SaslListener,
    _server_properties,
    _TlsListener,
)
from streamproc.security import KafkaSecurity, SecurityConfigError
from streamproc.service.app import create_app

SECRET = "pa55-w0rd-never-shown"
SASL = {
    "STREAMPROC_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "STREAMPROC_SASL_MECHANISM": "SCRAM-SHA-256",
    "STREAMPROC_SASL_USERNAME": "alice",
    "STREAMPROC_SASL_PASSWORD": SECRET,
}


def scram(protocol: str = "SASL_PLAINTEXT", mechanism: str = "SCRAM-SHA-512") -> KafkaSecurity:
    return KafkaSecurity(protocol, mechanism, "alice", SECRET)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed certificate and its key, standing in for a CA file and a client pair."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=streamproc-test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"ssl_cafile": str(cert), "ssl_certfile": str(cert), "ssl_keyfile": str(key)}


# --------------------------------------------------------------------------- environment


def test_no_variables_mean_plaintext_and_nothing_is_passed_on() -> None:
    sec = KafkaSecurity.from_env({})
    assert sec == KafkaSecurity() and sec.plaintext and not sec.sasl and not sec.tls
    assert sec.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert sec.faust_credentials() is None


def test_sasl_variables_are_read_and_normalised() -> None:
    env = {**SASL, "STREAMPROC_SECURITY_PROTOCOL": "sasl-plaintext"}
    env["STREAMPROC_SASL_MECHANISM"] = "scram_sha_256"
    sec = KafkaSecurity.from_env(env)
    assert (sec.security_protocol, sec.sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    assert (sec.username, sec.password) == ("alice", SECRET)


def test_the_mechanism_defaults_to_plain_and_empty_variables_count_as_unset() -> None:
    env = {**SASL, "STREAMPROC_SASL_MECHANISM": "", "STREAMPROC_SSL_CAFILE": ""}
    sec = KafkaSecurity.from_env(env)
    assert sec.sasl_mechanism == "PLAIN" and sec.ssl_cafile is None


def test_the_password_file_wins_and_loses_only_its_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "password"
    f.write_text(" from-file \n")
    sec = KafkaSecurity.from_env({**SASL, "STREAMPROC_SASL_PASSWORD_FILE": str(f)})
    assert sec.password == " from-file "


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("missing", ["cannot be read", "No such file"]),
        ("a-directory", ["cannot be read"]),
        ("empty", ["is empty"]),
    ],
)
def test_an_unusable_password_file_says_what_to_do(
    tmp_path: Path, name: str, words: list[str]
) -> None:
    path = tmp_path / name
    if name == "a-directory":
        path.mkdir()
    elif name == "empty":
        path.write_text("\n")
    with pytest.raises(SecurityConfigError) as err:
        KafkaSecurity.from_env({**SASL, "STREAMPROC_SASL_PASSWORD_FILE": str(path)})
    msg = str(err.value)
    assert f"STREAMPROC_SASL_PASSWORD_FILE={path}" in msg
    assert "set STREAMPROC_SASL_PASSWORD" in msg
    assert all(w in msg for w in words), msg


def test_to_env_round_trips_and_blanks_an_inherited_password_file(
    tls_files: dict[str, str],
) -> None:
    for sec in (
        KafkaSecurity(),
        scram(),
        KafkaSecurity("SASL_SSL", "PLAIN", "a", "b", **tls_files),
    ):
        env = sec.to_env()
        assert env["STREAMPROC_SASL_PASSWORD_FILE"] == ""
        assert KafkaSecurity.from_env(env) == sec


def test_settings_read_security_and_web_host_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in {**SASL, "STREAMPROC_WEB_HOST": "0.0.0.0"}.items():
        monkeypatch.setenv(k, v)
    s = Settings.from_env()
    assert s.security == KafkaSecurity.from_env(SASL) and s.web_host == "0.0.0.0"
    assert Settings().security.plaintext and Settings().web_host == "127.0.0.1"


# --------------------------------------------------------------------------- never shown


def test_the_password_is_masked_in_repr_str_and_the_settings() -> None:
    sec = scram()
    for text in (repr(sec), str(sec), f"{sec}", repr(Settings(security=sec))):
        assert SECRET not in text and "password='***'" in text
    assert SECRET not in repr(sec.faust_credentials())
    assert "password=None" in repr(KafkaSecurity())


def test_the_local_brokers_listener_does_not_show_passwords() -> None:
    assert SECRET not in repr(_SaslListener(9999, {"alice": SECRET}))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"security_protocol": "TLS"}, ["STREAMPROC_SECURITY_PROTOCOL", "'TLS'", "SASL_SSL"]),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "username": "a",
             "password": "b"},
            ["STREAMPROC_SASL_MECHANISM", "'GSSAPI'", "SCRAM-SHA-512"],
        ),
        ({"security_protocol": "SASL_PLAINTEXT", "password": "b"},
         ["needs a SASL username", "STREAMPROC_SASL_USERNAME"]),
        ({"security_protocol": "SASL_SSL", "username": "a"},
         ["needs a SASL password", "STREAMPROC_SASL_PASSWORD_FILE"]),
        ({"username": "a", "password": "b"},
         ["STREAMPROC_SASL_USERNAME", "PLAINTEXT, which sends no credentials",
          "STREAMPROC_SECURITY_PROTOCOL=SASL_PLAINTEXT"]),
        ({"security_protocol": "SSL", "sasl_mechanism": "PLAIN"},
         ["STREAMPROC_SASL_MECHANISM", "SSL, which sends no credentials"]),
        ({"security_protocol": "SASL_PLAINTEXT", "username": "a", "password": "b",
          "ssl_cafile": "/ca.pem"},
         ["STREAMPROC_SSL_CAFILE", "does not use TLS", "SASL_SSL"]),
        ({"security_protocol": "SSL", "ssl_keyfile": "/key.pem"},
         ["STREAMPROC_SSL_KEYFILE", "without ssl_certfile"]),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused_naming_the_variable(
    kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(SecurityConfigError) as err:
        KafkaSecurity(**kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert isinstance(err.value, ValueError)


def test_unreadable_tls_files_fail_when_the_clients_are_configured(tmp_path: Path) -> None:
    sec = KafkaSecurity("SSL", ssl_cafile=str(tmp_path / "nope.pem"))
    with pytest.raises(SecurityConfigError, match=r"STREAMPROC_SSL_CAFILE.*nope\.pem"):
        sec.aiokafka_kwargs()


# --------------------------------------------------------------------------- aiokafka, faust


def test_aiokafka_kwargs_for_sasl() -> None:
    assert scram().aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
    }


def test_aiokafka_kwargs_for_tls_carry_a_verifying_context(tls_files: dict[str, str]) -> None:
    kwargs = KafkaSecurity("SSL", **tls_files).aiokafka_kwargs()
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    ctx = kwargs["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    sasl_ssl = scram("SASL_SSL").aiokafka_kwargs()  # no CA file: the system's CAs
    assert sasl_ssl["security_protocol"] == "SASL_SSL"
    assert isinstance(sasl_ssl["ssl_context"], ssl.SSLContext)


def test_aiokafka_clients_accept_the_kwargs(tls_files: dict[str, str]) -> None:
    async def build(sec: KafkaSecurity) -> None:
        kw = sec.aiokafka_kwargs()
        AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kw)
        AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **kw)
        AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **kw)

    for sec in (
        KafkaSecurity(),
        scram(),
        KafkaSecurity("SASL_SSL", "PLAIN", "a", "b", **tls_files),
    ):
        asyncio.run(build(sec))


@pytest.mark.parametrize(
    ("sec", "kind", "protocol"),
    [
        (scram(), faust.SASLCredentials, AuthProtocol.SASL_PLAINTEXT),
        (scram("SASL_SSL"), faust.SASLCredentials, AuthProtocol.SASL_SSL),
        (KafkaSecurity("SSL"), faust.SSLCredentials, AuthProtocol.SSL),
    ],
)
def test_faust_credentials_give_faust_the_same_aiokafka_settings(
    sec: KafkaSecurity, kind: type, protocol: AuthProtocol
) -> None:
    cred = sec.faust_credentials()
    assert isinstance(cred, kind) and cred.protocol == protocol
    via_faust = credentials_to_aiokafka_auth(cred)
    ours = sec.aiokafka_kwargs()
    assert {k: v for k, v in via_faust.items() if k != "ssl_context"} == {
        k: v for k, v in ours.items() if k != "ssl_context"
    }
    assert isinstance(via_faust["ssl_context"], ssl.SSLContext) == sec.tls
    if sec.sasl:
        assert cred.mechanism == SASLMechanism.SCRAM_SHA_512


def test_the_worker_app_gets_the_credentials_and_the_web_host(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, security=scram(), web_host="0.0.0.0")
    conf = create_app(settings, "127.0.0.1:1").app.conf
    assert isinstance(conf.broker_credentials, faust.SASLCredentials)
    assert conf.broker_credentials.username == "alice"
    # faust binds web_bind; web_host is only the name it advertises (issue 12 item 4).
    assert conf.web_bind == "0.0.0.0" and conf.web_host not in ("0.0.0.0", "127.0.0.1")
    plain = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.conf
    assert plain.broker_credentials is None
    assert plain.web_bind == "127.0.0.1" and plain.web_host == "127.0.0.1"


# --------------------------------------------------------------------------- the SDK


def test_sdk_clients_take_security_from_the_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k, v in SASL.items():
        monkeypatch.setenv(k, v)
    metrics = MetricLogger(f"127.0.0.1:{free_port()}")
    watcher = DeploymentWatcher("127.0.0.1:1", "", ["m"], registry_root=tmp_path)
    try:
        assert metrics.security == watcher.security == KafkaSecurity.from_env(SASL)
        assert MetricLogger("127.0.0.1:1", security=KafkaSecurity()).security.plaintext
    finally:
        metrics.close(0.1)
    monkeypatch.setenv("STREAMPROC_SASL_USERNAME", "")
    with pytest.raises(SecurityConfigError, match="STREAMPROC_SASL_USERNAME"):
        MetricLogger("127.0.0.1:1")


def test_explain_leaves_an_unreachable_broker_as_it_is() -> None:
    error = ConnectionError("Unable to bootstrap")
    reason = asyncio.run(scram().explain(f"127.0.0.1:{free_port()}", error, timeout=2))
    assert reason == str(error)


def test_explain_tells_a_tls_client_at_a_listener_without_tls_to_check_the_protocol() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)  # what Kafka does: a size too large to be a request
        writer.close()

    async def explain() -> str:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            tls = KafkaSecurity("SSL")
            return await tls.explain(f"127.0.0.1:{port}", OSError("bootstrap"), timeout=5)

    reason = asyncio.run(explain())
    assert "closed the connection during the TLS handshake" in reason, reason
    assert "STREAMPROC_SECURITY_PROTOCOL (now SSL)" in reason
    # A refused connection is no handshake: the error stays as it is.
    refused = OSError("Unable to bootstrap")
    reason = asyncio.run(KafkaSecurity("SSL").explain(f"127.0.0.1:{free_port()}", refused, 2))
    assert reason == str(refused)


# --------------------------------------------------------------------------- local broker


def test_the_local_broker_opens_ssl_and_sasl_ssl_listeners_with_its_key_store(
    tmp_path: Path,
) -> None:
    sasl = _SaslListener(3333, {"alice": "pw"})
    tls = _TlsListener(4444, 5555, tmp_path / "broker.p12", "storepw", tmp_path / "ca.pem")
    assert "storepw" not in repr(tls)
    text = _server_properties(tmp_path, 1111, 2222, sasl, tls)
    props = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert props["listeners"].split(",")[2:] == [
        "SASL_PLAINTEXT://127.0.0.1:3333",
        "SSL://127.0.0.1:4444",
        "SASL_SSL://127.0.0.1:5555",
    ]
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["ssl.keystore.location"] == str(tmp_path / "broker.p12")
    mechanisms = props["listener.name.sasl_ssl.sasl.enabled.mechanisms"]
    assert mechanisms == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
    (tmp_path / "server.properties").write_text(text)
    assert _previous_ports(tmp_path) == (1111, 2222)
    # SSL alone, without SASL users: no SASL_SSL listener.
    text = _server_properties(tmp_path, 1111, 2222, None, tls)
    assert "SASL" not in text.upper()
    assert "SSL://127.0.0.1:4444" in text


def test_the_local_broker_config_is_unchanged_without_sasl_users(tmp_path: Path) -> None:
    text = _server_properties(tmp_path, 1111, 2222)
    assert "SASL" not in text.upper()
    (tmp_path / "server.properties").write_text(text)
    assert _previous_ports(tmp_path) == (1111, 2222)


def test_the_local_broker_config_with_sasl_users(tmp_path: Path) -> None:
    listener = _SaslListener(3333, {"alice": SECRET, "bob": "b"})
    text = _server_properties(tmp_path, 1111, 2222, listener)
    lines = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["listeners"].endswith(",SASL_PLAINTEXT://127.0.0.1:3333")
    assert lines["inter.broker.listener.name"] == "PLAINTEXT"
    prefix = "listener.name.sasl_plaintext."
    assert (
        lines[prefix + "sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
    )
    assert "OAuthBearerLoginModule" in lines[prefix + "oauthbearer.sasl.jaas.config"]
    assert f'user_alice="{SECRET}" user_bob="b";' in lines[prefix + "plain.sasl.jaas.config"]
    assert "ScramLoginModule" in lines[prefix + "scram-sha-512.sasl.jaas.config"]
    assert f"--add-scram=SCRAM-SHA-256=[name=alice,password={SECRET}]" in listener.scram_args()
    assert len(listener.scram_args()) == 4
    (tmp_path / "server.properties").write_text(text)
    assert _previous_ports(tmp_path) == (1111, 2222)


@pytest.mark.parametrize(
    ("users", "words"),
    [({}, "empty"), ({"a b": "x"}, "user name 'a b'"), ({"a": 'q"uote'}, "password of user 'a'")],
)
def test_the_local_broker_refuses_sasl_users_it_cannot_write(
    tmp_path: Path, users: dict[str, str], words: str
) -> None:
    with pytest.raises(ValueError, match=words) as err:
        LocalKafka().start(data_dir=tmp_path, sasl_users=users)
    assert 'q"uote' not in str(err.value)
    assert not list(tmp_path.iterdir()), "refused before anything was written"
