"""The configuration of a SIP trunk to a carrier (``trunks:`` in the config)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cti.config_base import ConfigError, ConfigModel, valid_network

_E164_PREFIX_RE = re.compile(r"^\+[0-9]{1,15}$")
_HOSTPORT_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}:[0-9]{1,5}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TrunkSettings(ConfigModel):
    """A SIP trunk to a carrier: call backs (and other numbers) go out through it,
    and its calls to a hotline are accepted."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    address: str  # "ip:port" of the carrier's SIP proxy
    transport: Literal["udp", "tcp"] = "udp"
    # Digest credentials for the carrier's 401/407 challenges.
    username: str | None = Field(None, pattern=r"^[A-Za-z0-9._+-]{1,64}$")
    password: str | None = Field(None, repr=False)
    password_env: str | None = None  # the name of an environment variable holding it
    realm: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,128}$")  # None: any
    caller_id: str | None = Field(None, pattern=r"^\+?[0-9]{1,20}$")  # the From user
    asserted_identity: str | None = Field(None, pattern=r"^\+?[0-9]{1,20}$")  # P-Asserted-Identity
    allowed_prefixes: list[str] = Field(min_length=1)
    max_calls: int = Field(10, ge=1, le=10_000)
    # REGISTER with the carrier (the edge's uac_reg; Contact sip:<name>@<edge>).
    # (The attribute is register_: BaseModel has a register() of its own.)
    register_: bool = Field(False, alias="register")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not _HOSTPORT_RE.match(v) or not valid_network(host) or not 0 < int(port) < 65536:
            raise ValueError("expected ip:port (e.g. 192.0.2.10:5060)")
        return v

    @field_validator("allowed_prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _E164_PREFIX_RE.match(p):
                raise ValueError(f"expected E.164 prefixes like \"+31\" (got {p!r})")
        return v

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_RE.match(v):
            raise ValueError("expected the name of an environment variable")
        return v

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in '"\\\r\n')):
            raise ValueError("expected a non-empty password without quotes, backslashes "
                             "or line breaks")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> TrunkSettings:
        if self.password is not None and self.password_env is not None:
            raise ValueError("password_env: give password or password_env, not both")
        has_secret = self.password is not None or self.password_env is not None
        if self.username is None and has_secret:
            raise ValueError("username: required key is missing (a password is given)")
        if self.username is not None and not has_secret:
            raise ValueError("password: required key is missing (give password or "
                             "password_env)")
        if self.register_ and self.username is None:
            raise ValueError("username: required key is missing (register: true needs "
                             "the account)")
        if self.password_env is not None:
            import os

            if not os.environ.get(self.password_env):
                raise ValueError(f"password_env: environment variable {self.password_env} "
                                 "is not set (or empty)")
        return self

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def secret(self) -> str | None:
        """The password (from the environment for password_env); never logged."""
        if self.password_env is not None:
            import os

            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(f"trunk {self.name!r}: environment variable "
                                  f"{self.password_env} is not set")
            return value
        return self.password

