"""SASL OAUTHBEARER settings and token providers: the environment picks one token source, the
aiokafka clients and faust's worker get the same provider, and each source yields a real token
or a sentence naming what to fix. The Amazon MSK IAM token is signed by AWS's own signer with
offline credentials (no AWS account is reached here)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streamproc.oauth import FileTokenProvider, MskIamTokenProvider, OAuthTokenError
from streamproc.security import KafkaSecurity, SecurityConfigError


def oauth_env(**extra: str) -> dict[str, str]:
    return {
        "STREAMPROC_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMPROC_SASL_MECHANISM": "oauthbearer",
        **extra,
    }


def test_a_token_file_configures_the_sdk_and_the_worker_alike(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.\n")
    sec = KafkaSecurity.from_env(oauth_env(STREAMPROC_SASL_OAUTH_TOKEN_FILE=str(token)))
    assert sec.sasl_mechanism == "OAUTHBEARER"
    assert KafkaSecurity.from_env(sec.to_env()) == sec
    kwargs = sec.aiokafka_kwargs()
    assert kwargs["sasl_mechanism"] == "OAUTHBEARER"
    provider = kwargs["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider)
    assert asyncio.run(provider.token()) == "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
    # What faust hands its aiokafka clients: the same mechanism over TLS, a provider of the file.
    creds = sec.faust_credentials()
    assert isinstance(creds, faust.OAuthCredentials)
    auth = credentials_to_aiokafka_auth(creds)
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert auth["ssl_context"] is not None
    token.write_text("rotated")  # read at every login, so a refreshed token is used
    assert asyncio.run(auth["sasl_oauth_token_provider"].token()) == "rotated"


def test_a_missing_or_empty_token_file_says_which_setting_to_check(tmp_path: Path) -> None:
    missing = FileTokenProvider(tmp_path / "absent")
    with pytest.raises(OAuthTokenError, match="STREAMPROC_SASL_OAUTH_TOKEN_FILE"):
        asyncio.run(missing.token())
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(OAuthTokenError, match="is empty"):
        asyncio.run(FileTokenProvider(tmp_path / "empty").token())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (oauth_env(), "needs one token source"),
        (
            oauth_env(
                STREAMPROC_SASL_OAUTH_TOKEN_FILE="/t", STREAMPROC_SASL_OAUTH_MSK_REGION="eu-west-1"
            ),
            r"\(not both\)",
        ),
        (
            oauth_env(STREAMPROC_SASL_OAUTH_TOKEN_FILE="/t", STREAMPROC_SASL_USERNAME="alice"),
            "not a user and password",
        ),
        (
            {
                "STREAMPROC_SECURITY_PROTOCOL": "SASL_SSL",
                "STREAMPROC_SASL_USERNAME": "alice",
                "STREAMPROC_SASL_PASSWORD": "pw",
                "STREAMPROC_SASL_OAUTH_MSK_REGION": "eu-west-1",
            },
            "STREAMPROC_SASL_MECHANISM=OAUTHBEARER",
        ),
    ],
)
def test_oauth_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError, match=message):
        KafkaSecurity.from_env(env)


def test_the_msk_iam_token_is_a_presigned_kafka_connect_request_for_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("aws_msk_iam_sasl_signer")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")  # AWS's documented example
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    sec = KafkaSecurity.from_env(oauth_env(STREAMPROC_SASL_OAUTH_MSK_REGION="eu-west-1"))
    provider = sec.aiokafka_kwargs()["sasl_oauth_token_provider"]
    assert isinstance(provider, MskIamTokenProvider)
    token = asyncio.run(provider.token())
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert "/eu-west-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert len(query["X-Amz-Signature"][0]) == 64


def test_msk_iam_without_credentials_says_what_to_give_the_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("aws_msk_iam_sasl_signer")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(OAuthTokenError, match="give the worker AWS credentials"):
        asyncio.run(MskIamTokenProvider("eu-west-1").token())
