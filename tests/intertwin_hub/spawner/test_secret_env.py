"""Which environment variables count as credentials and leave the pod spec for the Secret."""

from __future__ import annotations

import json

import pytest

from intertwin_hub.spawner.pod import is_secret_env

from .helpers import build

SECRET = [
    "JUPYTERHUB_API_TOKEN",
    "RUCIO_ACCESS_TOKEN",
    "DB_PASSWORD",
    "MY_SECRET",
    "OPENAI_API_KEY",
    "WANDB_API_KEY",
    "HF_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY",
    "SSH_PRIVATE_KEY",
    "GPG_PASSPHRASE",
    "GOOGLE_CREDENTIALS",
    "MLFLOW_TRACKING_PASSWORD",
    "SECRET_KEY_BASE",
    "KEY",
    "openai_api_key",
    "DJANGO_SECRET_KEY",
    "APIKEY",
    "AZURE_APIKEY",
    "PASSWORD_FILE",
]
PLAIN = [
    "RUCIO_BASE_URL",
    "KEYCLOAK_URL",
    "MONKEY",
    "KEYBOARD",
    "INTERTWIN_SITE",
    "JUPYTERHUB_API_URL",
    "TOKENIZERS_PARALLELISM",
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "SSH_AUTH_SOCK",
]


@pytest.mark.parametrize("name", SECRET)
def test_credential_names(name: str) -> None:
    assert is_secret_env(name)


@pytest.mark.parametrize("name", PLAIN)
def test_plain_names(name: str) -> None:
    assert not is_secret_env(name)


@pytest.mark.asyncio
async def test_key_names_go_to_the_secret_not_the_pod_spec() -> None:
    env = {
        "OPENAI_API_KEY": "sk-value-1",
        "AWS_SECRET_ACCESS_KEY": "aws-value-2",
        "HF_KEY": "hf-value-3",
        "AWS_ACCESS_KEY_ID": "AKIA-public-id",
    }
    pod, secrets = await build({"profile": "vega"}, environment=env)
    spec = json.dumps(pod)
    for value in ("sk-value-1", "aws-value-2", "hf-value-3"):
        assert value not in spec
    [secret] = secrets
    assert {
        k: secret["stringData"][k] for k in ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "HF_KEY")
    } == {
        "OPENAI_API_KEY": "sk-value-1",
        "AWS_SECRET_ACCESS_KEY": "aws-value-2",
        "HF_KEY": "hf-value-3",
    }
    # an access key id is an identifier, not a credential: it stays visible
    assert "AKIA-public-id" in spec
