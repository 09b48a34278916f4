"""SASL OAUTHBEARER token providers for the Kafka clients (aiokafka's ``AbstractTokenProvider``).

aiokafka (``sasl_oauth_token_provider``) and faust-streaming (``faust.OAuthCredentials``) both
call ``await provider.token()`` each time a connection authenticates, so a provider returns the
current token and never caches one past its expiry. Two sources:

- :class:`FileTokenProvider`: a file holding the current token (an OAuth access token or a JWT),
  reread at every login; whatever refreshes it (a sidecar, the kubelet's projected service
  account token) stays outside streamproc.
- :class:`MskIamTokenProvider`: Amazon MSK IAM access control. The token is a SigV4-presigned
  ``kafka-cluster:Connect`` request made by ``aws-msk-iam-sasl-signer-python`` (extra
  ``streamproc[msk]``) with the AWS credentials of botocore's default chain (environment, IRSA
  web identity, instance profile); it is valid 15 minutes and a new one is signed at every login.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiokafka.abc import AbstractTokenProvider

from streamproc.core.exceptions import StreamprocError

__all__ = ["FileTokenProvider", "MskIamTokenProvider", "OAuthTokenError"]

log = logging.getLogger(__name__)


class OAuthTokenError(StreamprocError, RuntimeError):
    """No token could be had; the message says from where and what to fix."""


class FileTokenProvider(AbstractTokenProvider):
    """The token in ``path`` (surrounding white space dropped), read at every login.

    Raises
    ------
    OAuthTokenError
        From :meth:`token` when the file cannot be read or is empty.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"FileTokenProvider({str(self.path)!r})"

    async def token(self) -> str:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise OAuthTokenError(
                f"cannot read the OAUTHBEARER token file {self.path} "
                f"({getattr(exc, 'strerror', None) or exc}): check "
                "STREAMPROC_SASL_OAUTH_TOKEN_FILE and that whatever writes the token wrote it."
            ) from None
        if not text:
            raise OAuthTokenError(
                f"the OAUTHBEARER token file {self.path} is empty: it must hold the current token."
            )
        return text


class MskIamTokenProvider(AbstractTokenProvider):
    """An Amazon MSK IAM token for ``region``, signed at every login.

    Raises
    ------
    OAuthTokenError
        At construction when ``aws-msk-iam-sasl-signer-python`` is not installed; from
        :meth:`token` when no AWS credentials are found or signing fails.
    """

    def __init__(self, region: str) -> None:
        try:
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        except ImportError:
            raise OAuthTokenError(
                "Amazon MSK IAM needs aws-msk-iam-sasl-signer-python: "
                "pip install 'streamproc[msk]'."
            ) from None
        self.region = region
        self._signer = MSKAuthTokenProvider

    def __repr__(self) -> str:
        return f"MskIamTokenProvider(region={self.region!r})"

    async def token(self) -> str:
        try:
            # botocore may read files or call the instance metadata service: off the loop.
            token, expiry_ms = await asyncio.to_thread(
                self._signer.generate_auth_token, self.region
            )
        except Exception as exc:  # botocore's errors have no common base worth importing
            raise OAuthTokenError(
                f"cannot sign an Amazon MSK IAM token for region {self.region} "
                f"({type(exc).__name__}: {exc}): give the worker AWS credentials (IRSA, an "
                "instance profile, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) allowed "
                "kafka-cluster:Connect, and check STREAMPROC_SASL_OAUTH_MSK_REGION."
            ) from None
        log.debug("MSK IAM token signed for %s, expires at %d ms", self.region, expiry_ms)
        return str(token)
