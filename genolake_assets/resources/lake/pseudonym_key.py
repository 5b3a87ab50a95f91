"""Reading the pseudonym key (docs/phi.md): inline, from a file, or from AWS Secrets Manager / SSM.

The key is returned as bytes and nothing else: no function here logs it, puts it in an error message
or writes it anywhere. Errors name the variable (and, for a secret, its ARN or name, which is not secret).
"""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from genolake_assets.lib.lake.identifiers import MIN_KEY_BYTES, parse_pseudonym_key
from genolake_assets.settings import (
    PSEUDONYM_KEY_FILE_VARIABLE,
    PSEUDONYM_KEY_PARAMETER_VARIABLE,
    PSEUDONYM_KEY_VARIABLE,
    PSEUDONYMISE_VARIABLE,
    pseudonym_key_text,
)


class PseudonymKeyError(ValueError):
    """The pseudonym key cannot be read or is not a usable key."""


def load_pseudonym_key(*, key_file: str | None = None, parameter: str | None = None, region: str | None = None,
                       endpoint_url: str | None = None) -> bytes:
    """The key from exactly one source: ``parameter`` (Secrets Manager / SSM), ``key_file``, or the
    ``GENOLAKE_PSEUDONYM_KEY`` environment variable."""
    inline = pseudonym_key_text()
    given = [name for name, value in ((PSEUDONYM_KEY_PARAMETER_VARIABLE, parameter),
                                      (PSEUDONYM_KEY_FILE_VARIABLE, key_file), (PSEUDONYM_KEY_VARIABLE, inline))
             if value]
    if not given:
        raise PseudonymKeyError(f"{PSEUDONYMISE_VARIABLE}=1 needs the pseudonym key: set {PSEUDONYM_KEY_VARIABLE} "
                                f"(hex or base64 text), {PSEUDONYM_KEY_FILE_VARIABLE} (a file holding it) or "
                                f"{PSEUDONYM_KEY_PARAMETER_VARIABLE} (the Secrets Manager secret holding it)")
    if len(given) > 1:
        raise PseudonymKeyError(f"set only one of {', '.join(given)}: they all name the pseudonym key")
    try:
        if parameter:
            return _read_aws_secret(parameter, region, endpoint_url)
        if key_file:
            return parse_pseudonym_key(_read_key_file(key_file), f"{PSEUDONYM_KEY_FILE_VARIABLE} ({key_file})")
        return parse_pseudonym_key(inline, PSEUDONYM_KEY_VARIABLE)
    except PseudonymKeyError:
        raise
    except ValueError as error:
        raise PseudonymKeyError(str(error)) from None


def _read_key_file(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise PseudonymKeyError(f"{PSEUDONYM_KEY_FILE_VARIABLE}: cannot read the key file {path}: "
                                f"{type(error).__name__}") from None


def _read_aws_secret(parameter: str, region: str | None, endpoint_url: str | None) -> bytes:
    """The key in a Secrets Manager secret (its SecretString as hex/base64 text, or its SecretBinary as
    the raw key), or in an SSM SecureString parameter when ``parameter`` is an SSM parameter ARN."""
    from genolake_assets.resources.lake.s3_store import aws_client

    source = f"{PSEUDONYM_KEY_PARAMETER_VARIABLE} ({parameter})"
    arn = parameter.split(":") if parameter.startswith("arn:") else []
    region = region or (arn[3] if len(arn) > 4 and arn[3] else None)
    try:
        if len(arn) > 4 and arn[2] == "ssm":
            client = aws_client("ssm", endpoint_url=endpoint_url, region_name=region)
            return parse_pseudonym_key(
                client.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"], source)
        secret = aws_client("secretsmanager", endpoint_url=endpoint_url,
                            region_name=region).get_secret_value(SecretId=parameter)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise PseudonymKeyError(f"{source}: cannot read the secret: {code} (the orchestrator's role needs "
                                "secretsmanager:GetSecretValue on it, and kms:Decrypt on its KMS key)") from None
    except BotoCoreError as error:
        raise PseudonymKeyError(f"{source}: cannot read the secret: {type(error).__name__}") from None
    if secret.get("SecretString") is not None:
        return parse_pseudonym_key(secret["SecretString"], source)
    raw = secret.get("SecretBinary")
    if not raw:
        raise PseudonymKeyError(f"{source}: the secret has no value")
    if len(raw) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"{source}: the binary key is {len(raw)} bytes; at least {MIN_KEY_BYTES} are needed")
    return bytes(raw)
