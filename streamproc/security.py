"""Secured connections to Kafka: TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER).

One :class:`KafkaSecurity` value configures every Kafka client streamproc makes: the worker's
faust app (:meth:`KafkaSecurity.faust_credentials`) and the aiokafka producers, consumers and
admin clients of the SDK and the tools (:meth:`KafkaSecurity.aiokafka_kwargs`). It comes from the
environment:

| variable | default | meaning |
|---|---|---|
| STREAMPROC_SECURITY_PROTOCOL | PLAINTEXT | PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL |
| STREAMPROC_SASL_MECHANISM | PLAIN | PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (SASL) |
| STREAMPROC_SASL_USERNAME | | SASL user name (required with SASL but OAUTHBEARER) |
| STREAMPROC_SASL_PASSWORD | | SASL password |
| STREAMPROC_SASL_PASSWORD_FILE | | file holding the SASL password; wins over the variable |
| STREAMPROC_SASL_OAUTH_TOKEN_FILE | | OAUTHBEARER: file holding the current token, read at login |
| STREAMPROC_SASL_OAUTH_MSK_REGION | | OAUTHBEARER: Amazon MSK IAM tokens for this AWS region |
| STREAMPROC_SSL_CAFILE | (system CAs) | PEM file of the CA that signed the brokers' certificates |
| STREAMPROC_SSL_CERTFILE | | PEM client certificate, for brokers that require mutual TLS |
| STREAMPROC_SSL_KEYFILE | | PEM private key of the client certificate (if not in CERTFILE) |

The password is never logged: ``repr`` and ``str`` mask it, and faust's credentials print only
the user name. OAUTHBEARER takes its token from one of the two sources above
(:mod:`streamproc.oauth`). A setting that cannot work (SASL without a user, credentials with
PLAINTEXT, an unreadable password file) raises :class:`SecurityConfigError` at start, naming the
variable.

Examples
--------
>>> sec = KafkaSecurity.from_env({
...     "STREAMPROC_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
...     "STREAMPROC_SASL_MECHANISM": "scram-sha-256",
...     "STREAMPROC_SASL_USERNAME": "alice",
...     "STREAMPROC_SASL_PASSWORD": "s3cret",
... })
>>> sec
KafkaSecurity(security_protocol='SASL_PLAINTEXT', sasl_mechanism='SCRAM-SHA-256', \
username='alice', password='***', ssl_cafile=None, ssl_certfile=None, ssl_keyfile=None, \
oauth_token_file=None, msk_region=None)
>>> sorted(sec.aiokafka_kwargs())
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
>>> KafkaSecurity().aiokafka_kwargs()
{'security_protocol': 'PLAINTEXT'}
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from streamproc.core.exceptions import StreamprocError

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaSecurity", "SecurityConfigError"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

_PROTOCOL = "STREAMPROC_SECURITY_PROTOCOL"
_MECHANISM = "STREAMPROC_SASL_MECHANISM"
_USERNAME = "STREAMPROC_SASL_USERNAME"
_PASSWORD = "STREAMPROC_SASL_PASSWORD"
_PASSWORD_FILE = "STREAMPROC_SASL_PASSWORD_FILE"
_TOKEN_FILE = "STREAMPROC_SASL_OAUTH_TOKEN_FILE"
_MSK_REGION = "STREAMPROC_SASL_OAUTH_MSK_REGION"
_OAUTH = {"oauth_token_file": _TOKEN_FILE, "msk_region": _MSK_REGION}
_SSL_FILES = {
    "ssl_cafile": "STREAMPROC_SSL_CAFILE",
    "ssl_certfile": "STREAMPROC_SSL_CERTFILE",
    "ssl_keyfile": "STREAMPROC_SSL_KEYFILE",
}


class SecurityConfigError(StreamprocError, ValueError):
    """The Kafka security settings cannot work; the message names the setting and the fix."""


def _name(attr: str) -> str:
    """A field as a person sets it: the attribute and its environment variable."""
    env = {
        "security_protocol": _PROTOCOL,
        "sasl_mechanism": _MECHANISM,
        "username": _USERNAME,
        "password": _PASSWORD,
        **_SSL_FILES,
        **_OAUTH,
    }[attr]
    return f"{attr} ({env})"


@dataclass(frozen=True, repr=False)
class KafkaSecurity:
    """How streamproc's Kafka clients connect: TLS and/or SASL, or neither (the default).

    Values are normalised (``sasl_plaintext`` -> ``SASL_PLAINTEXT``, ``scram_sha_512`` ->
    ``SCRAM-SHA-512``) and checked on construction.

    Raises
    ------
    SecurityConfigError
        On an unknown protocol or mechanism, SASL without a user name or password, credentials
        or TLS files with a protocol that would not use them, a key file without a certificate.
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    oauth_token_file: str | None = None
    msk_region: str | None = None

    def __post_init__(self) -> None:
        protocol = self.security_protocol.strip().upper().replace("-", "_")
        if protocol not in PROTOCOLS:
            raise SecurityConfigError(
                f"{_name('security_protocol')} is {self.security_protocol!r}; use one of "
                f"{', '.join(PROTOCOLS)}."
            )
        object.__setattr__(self, "security_protocol", protocol)
        mech = self.sasl_mechanism
        if mech is not None:
            mech = mech.strip().upper().replace("_", "-")
            if mech not in MECHANISMS:
                raise SecurityConfigError(
                    f"{_name('sasl_mechanism')} is {self.sasl_mechanism!r}; use one of "
                    f"{', '.join(MECHANISMS)}."
                )
        oauth = [a for a in _OAUTH if getattr(self, a)]
        if self.sasl and mech == "OAUTHBEARER":
            if len(oauth) != 1:
                raise SecurityConfigError(
                    f"OAUTHBEARER needs one token source: set {_TOKEN_FILE} or {_MSK_REGION}"
                    f"{' (not both)' if oauth else ''}."
                )
            given = [a for a in ("username", "password") if getattr(self, a)]
            if given:
                raise SecurityConfigError(
                    f"{', '.join(_name(a) for a in given)} set, but OAUTHBEARER sends a token, "
                    "not a user and password: unset them."
                )
            object.__setattr__(self, "sasl_mechanism", mech)
        elif oauth:
            raise SecurityConfigError(
                f"{', '.join(_name(a) for a in oauth)} set, but the SASL mechanism is "
                f"{mech or 'none'}: set {_PROTOCOL}=SASL_SSL and {_MECHANISM}=OAUTHBEARER."
            )
        elif self.sasl:
            object.__setattr__(self, "sasl_mechanism", mech or "PLAIN")
            for attr in ("username", "password"):
                if not getattr(self, attr):
                    raise SecurityConfigError(
                        f"{protocol} needs a SASL {attr}: set {_name(attr)}"
                        + (f" or {_PASSWORD_FILE}." if attr == "password" else ".")
                    )
        else:
            given = [a for a in ("sasl_mechanism", "username", "password") if getattr(self, a)]
            if given:
                raise SecurityConfigError(
                    f"{', '.join(_name(a) for a in given)} set, but the security protocol is "
                    f"{protocol}, which sends no credentials: set {_PROTOCOL}=SASL_PLAINTEXT, "
                    "or SASL_SSL for SASL over TLS."
                )
        files = [a for a in _SSL_FILES if getattr(self, a)]
        if files and not self.tls:
            raise SecurityConfigError(
                f"{', '.join(_name(a) for a in files)} set, but the security protocol is "
                f"{protocol}, which does not use TLS: set {_PROTOCOL}=SSL, or SASL_SSL."
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise SecurityConfigError(
                f"{_name('ssl_keyfile')} is set without {_name('ssl_certfile')}: a client key "
                "goes with its certificate; set both, or neither."
            )

    # -- reading -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Settings from ``env`` (default: ``os.environ``); empty variables count as unset.

        ``STREAMPROC_SASL_PASSWORD_FILE``, when set, wins over ``STREAMPROC_SASL_PASSWORD``; one
        trailing newline in the file is ignored.
        """
        if env is None:
            env = os.environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        password = get(_PASSWORD)
        path = get(_PASSWORD_FILE)
        if path is not None:
            password = _read_password(path)
        return cls(
            security_protocol=get(_PROTOCOL) or "PLAINTEXT",
            sasl_mechanism=get(_MECHANISM),
            username=get(_USERNAME),
            password=password,
            **{attr: get(var) for attr, var in _SSL_FILES.items()},
            **{attr: get(var) for attr, var in _OAUTH.items()},
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` return these settings in a child process.

        It holds the password in clear: pass it only to a process you start.
        """
        values = {
            _PROTOCOL: self.security_protocol,
            _MECHANISM: self.sasl_mechanism,
            _USERNAME: self.username,
            _PASSWORD: self.password,
            _PASSWORD_FILE: None,  # the parent's file would win over the password above
            **{var: getattr(self, attr) for attr, var in _SSL_FILES.items()},
            **{var: getattr(self, attr) for attr, var in _OAUTH.items()},
        }
        return {k: v or "" for k, v in values.items()}

    # -- describing ----------------------------------------------------------------------

    def __repr__(self) -> str:
        shown = {
            f.name: ("***" if f.name == "password" and self.password else getattr(self, f.name))
            for f in fields(self)
        }
        return f"KafkaSecurity({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def sasl(self) -> bool:
        """Whether the clients authenticate with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        """Whether the connections are encrypted with TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def plaintext(self) -> bool:
        """Neither TLS nor SASL: the default, for a local or otherwise private broker."""
        return self.security_protocol == "PLAINTEXT"

    # -- for the clients -----------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context built from the CA and client files; None without TLS.

        Without ``ssl_cafile`` the system's CAs verify the brokers (as for a managed service
        with a public certificate); the host name is always checked.
        """
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        try:
            return create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as exc:
            files = [f"{_name(a)}={getattr(self, a)}" for a in _SSL_FILES if getattr(self, a)]
            raise SecurityConfigError(
                f"cannot load the TLS files {', '.join(files) or '(system CAs)'}: {exc}; point "
                "the variables at readable PEM files."
            ) from None

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client.

        They hold the password: do not log them.
        """
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl and self.sasl_mechanism == "OAUTHBEARER":
            kwargs["sasl_mechanism"] = "OAUTHBEARER"
            kwargs["sasl_oauth_token_provider"] = self.token_provider()
        elif self.sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs

    def token_provider(self) -> Any:
        """The OAUTHBEARER token provider (:mod:`streamproc.oauth`); None for other mechanisms.

        Raises
        ------
        OAuthTokenError
            For Amazon MSK IAM without ``aws-msk-iam-sasl-signer-python`` installed.
        """
        from streamproc.oauth import FileTokenProvider, MskIamTokenProvider

        if self.oauth_token_file:
            return FileTokenProvider(self.oauth_token_file)
        if self.msk_region:
            return MskIamTokenProvider(self.msk_region)
        return None

    def faust_credentials(self) -> Any:
        """faust's ``broker_credentials``: ``SASLCredentials``, ``SSLCredentials``, or None.

        faust-streaming hands them to the aiokafka clients of the worker; SCRAM mechanisms are
        spelled as Kafka does (``SCRAM-SHA-256``).
        """
        if self.plaintext:
            return None
        import faust

        context = self.ssl_context()
        if self.sasl and self.sasl_mechanism == "OAUTHBEARER":
            # faust makes it SASL_SSL when given a TLS context, else SASL_PLAINTEXT.
            return faust.OAuthCredentials(oauth_cb=self.token_provider(), ssl_context=context)
        if self.sasl:
            return faust.SASLCredentials(
                username=self.username,
                password=self.password,
                ssl_context=context,
                mechanism=self.sasl_mechanism,
            )
        return faust.SSLCredentials(context)

    async def explain(self, bootstrap: str, error: BaseException, timeout: float = 5.0) -> str:
        """Why a client could not connect to ``bootstrap``, as a sentence naming what to fix.

        aiokafka reports every failed bootstrap as "Unable to bootstrap"; one direct connection
        to the first server recovers the cause: refused credentials, a mechanism the broker does
        not enable, a TLS failure, or a listener that expects another protocol.
        """
        from aiokafka import errors

        from streamproc.compat.aiokafka import probe

        where = bootstrap.split(",")[0].strip()
        host, _, port = where.rpartition(":")
        try:
            await probe(host.strip("[]"), int(port), timeout, **self.aiokafka_kwargs())
        except (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError):
            return (
                f"Kafka at {where} refused the credentials of SASL user {self.username!r}: check "
                f"{_USERNAME}, {_PASSWORD} (or {_PASSWORD_FILE}) and {_MECHANISM} (now "
                f"{self.sasl_mechanism})."
            )
        except errors.UnsupportedSaslMechanismError as exc:
            return f"{exc}: set {_MECHANISM} to a mechanism the broker enables."
        except ssl.SSLError as exc:
            return (
                f"TLS with Kafka at {where} failed ({exc}): check {_SSL_FILES['ssl_cafile']} "
                f"and that this listener speaks TLS ({_PROTOCOL} is {self.security_protocol})."
            )
        except (errors.KafkaConnectionError, errors.IllegalSaslStateError) as exc:
            return (
                f"Kafka at {where} did not accept a {self.security_protocol} client ({exc}): "
                f"this listener speaks another protocol; check {_PROTOCOL}."
            )
        except ConnectionResetError as exc:
            if not self.tls:
                return str(error)
            # A listener without TLS reads the ClientHello as an oversized request and hangs up.
            return (
                f"Kafka at {where} closed the connection during the TLS handshake "
                f"({type(exc).__name__}): this listener does not speak TLS; check {_PROTOCOL} "
                f"(now {self.security_protocol}) and the port."
            )
        except (OSError, TimeoutError, ValueError, errors.KafkaError):
            return str(error)
        return str(error)


def _read_password(path: str) -> str:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SecurityConfigError(
            f"{_PASSWORD_FILE}={path} cannot be read ({reason}): create it holding only the SASL "
            f"password, readable by this user, or unset it and set {_PASSWORD}."
        ) from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise SecurityConfigError(
            f"{_PASSWORD_FILE}={path} is empty: write the SASL password into it, or unset it "
            f"and set {_PASSWORD}."
        )
    return password
