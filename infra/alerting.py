"""How the agency delivers alerts: its SMTP server and SMS gateway, as Kuma notification providers.

A tier names channels (email, sms, webhook); a client names contacts. What
is neither the tier's nor the client's business is how the agency sends an
e-mail or an SMS: that is this small config, one YAML file per agency.

    email:                        # Kuma provider "smtp"
      host: smtp.agency.example
      port: 587
      secure: false               # true: TLS from the first byte (port 465); false: STARTTLS
      from: "Agency alerts <alerts@agency.example>"
      username: alerts@agency.example
      password_env: CARESTACK_SMTP_PASSWORD    # the secret stays in the environment
    sms:                          # any Kuma SMS provider
      provider: SMSEagle
      recipient_field: smseagleRecipient     # the provider's field that takes the phone number
      settings: {smseagleUrl: "https://sms.agency.example", smseagleRecipientType: smseagle-to}
      secret_env: {smseagleToken: CARESTACK_SMS_TOKEN}

The contact's own webhook needs no agency settings. With `receiver_url: URL`
instead, every channel is a webhook to that one receiver, tagged with the
channel and contact it stands for (the lab's alert receiver uses this).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from uptime_kuma_api import NotificationType, notification_provider_options

from infra.plan import ContactPlan


class AlertingError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SmtpSettings(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    secure: bool = False
    sender: str = Field(alias="from", min_length=3)
    username: str | None = None
    password_env: str | None = None


class SmsGateway(_Strict):
    provider: str
    recipient_field: str
    settings: dict[str, str | int | bool] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_provider(self) -> SmsGateway:
        valid = [t.value for t in NotificationType]
        if self.provider not in valid:
            raise ValueError(f"provider: unknown Kuma notification provider {self.provider!r}")
        options = notification_provider_options[NotificationType(self.provider)]
        given = {self.recipient_field, *self.settings, *self.secret_env}
        unknown = sorted(given - set(options))
        if unknown:
            raise ValueError(f"{self.provider} has no field(s) {', '.join(unknown)} (fields: {', '.join(options)})")
        missing = sorted(name for name, spec in options.items() if spec["required"] and name not in given)
        if missing:
            raise ValueError(f"{self.provider} needs {', '.join(missing)} in settings or secret_env")
        return self


class AlertingConfig(_Strict):
    email: SmtpSettings | None = None
    sms: SmsGateway | None = None
    # Every channel becomes a webhook to this URL (a test receiver such as the lab's).
    receiver_url: str | None = None


def load_alerting(path: Path) -> AlertingConfig:
    """Read and validate an agency alerting file; errors name the file and the field."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise AlertingError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise AlertingError(f"{path}: not valid YAML: {exc}") from None
    try:
        return AlertingConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise AlertingError(f"{path}: " + "; ".join(problems)) from None


def _secret(env: str, field: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise AlertingError(f"alerting: {field} is read from the environment variable {env}, which is not set")
    return value


def _address(channel: str, contact: ContactPlan) -> str | None:
    return {"email": contact.email, "sms": contact.phone, "webhook": contact.webhook}[channel]


def recipients(channels: tuple[str, ...], contacts: tuple[ContactPlan, ...]) -> list[tuple[str, ContactPlan]]:
    """(channel, contact) for every contact reachable on a channel the tier alerts by."""
    return [(channel, contact) for channel in channels for contact in contacts if _address(channel, contact)]


def provider_config(config: AlertingConfig, client_id: str, channel: str, contact: ContactPlan) -> dict[str, Any]:
    """The Kuma notification fields (without name) that deliver `channel` alerts to `contact`."""
    address = _address(channel, contact)
    if address is None:
        raise AlertingError(f"contact {contact.name!r} has no {channel} address")
    if config.receiver_url:
        query = urlencode({"client": client_id, "channel": channel, "to": contact.name})
        return {"type": "webhook", "webhookURL": f"{config.receiver_url}?{query}", "webhookContentType": "json"}
    if channel == "webhook":
        return {"type": "webhook", "webhookURL": address, "webhookContentType": "json"}
    if channel == "email":
        if config.email is None:
            raise AlertingError("the tier alerts by email but the alerting config has no email (SMTP) section")
        smtp = config.email
        fields: dict[str, Any] = {
            "type": "smtp",
            "smtpHost": smtp.host,
            "smtpPort": smtp.port,
            "smtpSecure": smtp.secure,
            "smtpFrom": smtp.sender,
            "smtpTo": address,
        }
        if smtp.username:
            fields["smtpUsername"] = smtp.username
        if smtp.password_env:
            fields["smtpPassword"] = _secret(smtp.password_env, "email.password")
        return fields
    if config.sms is None:
        raise AlertingError("the tier alerts by sms but the alerting config has no sms (gateway) section")
    sms = config.sms
    fields = {"type": sms.provider, **sms.settings, sms.recipient_field: address}
    for field, env in sms.secret_env.items():
        fields[field] = _secret(env, f"sms.{field}")
    return fields
