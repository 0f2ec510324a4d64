"""Client library settings (librdkafka's, the schema registry client's) from environment variables.

A setting is the variable `<prefix>` + the setting in capitals with `_` for `.` (`sasl.password` <-
`KAFKA_SASL_PASSWORD`), or the file named by that variable + `_FILE` (a mounted secret). Secret
settings (passwords, client secrets, tokens, private keys) are read when a client is built, so a
rotated secret is used by the next client, and a resource's configuration, which the Dagster UI shows,
holds only the variable's name or the file's path: `SecuredClientResource` refuses a secret value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypedDict

from dagster import ConfigurableResource
from pydantic import field_validator

SECRET_WORDS = ("password", "secret", "key.pem", "user.info")
SECRET_SETTINGS = {"sasl.oauthbearer.config", "bearer.auth.token"}


def setting_variable(variable_prefix: str, setting: str) -> str:
    return variable_prefix + setting.upper().replace(".", "_")


def is_secret(setting: str) -> bool:
    return setting in SECRET_SETTINGS or any(word in setting for word in SECRET_WORDS)


class ClientConfigurationError(RuntimeError):
    """A client's settings or credentials are wrong; retrying cannot help. Names the variable to fix."""


@dataclass(frozen=True)
class ClientSettings:
    """Plain values (shown in the UI) and, per secret setting, the variable or file it is read from."""

    variable_prefix: str
    settings: dict[str, str]
    secrets_from_env: dict[str, str]
    secrets_from_files: dict[str, str]

    @classmethod
    def from_env(
        cls, variable_prefix: str, setting_prefixes: tuple[str, ...], environ: Mapping[str, str] | None = None
    ) -> ClientSettings:
        """Every setting under `setting_prefixes` that a `<variable_prefix>…` variable sets.

        Only those prefixes: a Kubernetes Service named `kafka` sets `KAFKA_PORT`, which is no setting.
        """
        environ = os.environ if environ is None else environ
        found = cls(variable_prefix, {}, {}, {})
        for variable, value in environ.items():
            if not variable.startswith(variable_prefix) or not value:
                continue
            setting = variable.removeprefix(variable_prefix).removesuffix("_FILE").lower().replace("_", ".")
            if not setting.startswith(setting_prefixes):
                continue
            if variable.endswith("_FILE"):
                found.secrets_from_files[setting] = value
            elif is_secret(setting):
                found.secrets_from_env[setting] = variable
            else:
                found.settings[setting] = value
        return found

    def variable(self, setting: str) -> str:
        return setting_variable(self.variable_prefix, setting)

    def source(self, setting: str) -> str:
        """Where an operator fixes a setting: its variable, or the variable naming the file that holds it."""
        if setting in self.secrets_from_files:
            return f"{self.variable(setting)}_FILE ({self.secrets_from_files[setting]})"
        return self.variable(setting)

    @property
    def configured(self) -> list[str]:
        return sorted({*self.settings, *self.secrets_from_env, *self.secrets_from_files})

    def client_config(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every setting with its secrets read now."""
        environ = os.environ if environ is None else environ
        config = dict(self.settings)
        for setting, variable in self.secrets_from_env.items():
            if variable not in environ:
                raise ClientConfigurationError(f"{variable} is not set; it holds the setting `{setting}`")
            config[setting] = environ[variable]
        for setting, path in self.secrets_from_files.items():
            try:
                config[setting] = Path(path).read_text().strip()
            except OSError as error:
                raise ClientConfigurationError(
                    f"{self.variable(setting)}_FILE names {path}, which cannot be read ({error.strerror}); "
                    f"it holds the setting `{setting}`"
                ) from error
        return config


class SecurityFields(TypedDict):
    security: dict[str, str]
    secrets_from_env: dict[str, str]
    secrets_from_files: dict[str, str]


class SecuredClientResource(ConfigurableResource):
    """A resource whose client takes security settings from `<variable_prefix>…` variables (module docstring)."""

    variable_prefix: ClassVar[str]
    setting_prefixes: ClassVar[tuple[str, ...]]

    # Values that are not secret, and the variable or mounted file each secret is read from.
    security: dict[str, str] = {}
    secrets_from_env: dict[str, str] = {}
    secrets_from_files: dict[str, str] = {}

    @field_validator("security")
    @classmethod
    def _no_secret_values(cls, settings: dict[str, str]) -> dict[str, str]:
        refuse_secret_values(cls.variable_prefix, settings)
        return settings

    @classmethod
    def settings_from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """The client's security settings in the environment (also for clients built outside the resource)."""
        return ClientSettings.from_env(cls.variable_prefix, cls.setting_prefixes, environ)

    @classmethod
    def security_fields_from_env(cls) -> SecurityFields:
        """The resource's security fields, from the environment."""
        found = cls.settings_from_env()
        return {
            "security": found.settings,
            "secrets_from_env": found.secrets_from_env,
            "secrets_from_files": found.secrets_from_files,
        }

    @property
    def client_settings(self) -> ClientSettings:
        return ClientSettings(self.variable_prefix, self.security, self.secrets_from_env, self.secrets_from_files)


def refuse_secret_values(variable_prefix: str, settings: Mapping[str, str]) -> None:
    """A secret given as a value would be shown in the Dagster UI: name where it is read from instead.

    Not a ValueError: pydantic would quote the offending input, the secret, in its message.
    """
    for setting in settings:
        if is_secret(setting):
            variable = setting_variable(variable_prefix, setting)
            raise ClientConfigurationError(
                f"`{setting}` is a secret: set {variable} (or {variable}_FILE for a mounted file) instead of "
                "giving its value in the resource's configuration"
            )
