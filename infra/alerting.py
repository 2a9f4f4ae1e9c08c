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

    agency:                       # the agency's own on-call: hears of every alert, and alone of job heartbeats
      name: Agency on-call
      email: oncall@agency.example
      phone: "+4930555000"
      webhook: https://chat.agency.example/hooks/carestack

The contact's own webhook needs no agency settings. Who hears of what is the
CarePlan's alert routing; this file says how to reach them. A client's
contacts get plain-language messages (custom e-mail subject and body, custom
webhook body, where the Kuma version supports them; an SMS gateway sends
Kuma's own text); the agency gets Kuma's full technical detail. With `receiver_url: URL`
instead, every channel is a webhook to that one receiver, tagged with the
channel and recipient it stands for (the lab's alert receiver uses this); the
agency is `agency`.
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

CHANNELS = ("email", "sms", "webhook")
AGENCY_ROLE = "agency"
LAB_AGENCY = "agency"  # the name the lab's receiver records for the agency's on-call
# What a client's contact reads, in plain words: Liquid templates that Kuma renders per alert
# (1.23, 2.x and 2.0.0-dev.0 render `{{NAME}}` and `{{STATUS}}` in an e-mail subject; the
# webhook body and the e-mail body are full Liquid; Kuma without custom e-mail bodies sends its own).
_PLAIN_SENTENCE = (
    "{%- if heartbeatJSON.status == 0 -%}"
    "{%- assign what = ' does not answer as it should. We have been alerted and are looking into it.' -%}"
    "{%- else -%}{%- assign what = ' answers again as it should.' -%}{%- endif -%}"
)
PLAIN_WEBHOOK_BODY = (
    _PLAIN_SENTENCE + '{"msg": {{ "Your website check " | append: monitorJSON.name | append: what | json }}, '
    '"monitor": {"name": {{ monitorJSON.name | json }}}, '
    '"heartbeat": {"status": {{ heartbeatJSON.status | json }}, "time": {{ heartbeatJSON.localDateTime | json }}}}'
)
PLAIN_EMAIL_SUBJECT = "Your website check {{NAME}}: {{STATUS}}"
PLAIN_EMAIL_BODY = _PLAIN_SENTENCE + "Your website check {{ monitorJSON.name }}{{ what }}"


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


class AgencyOnCall(_Strict):
    name: str = Field(default="Agency on-call", min_length=1)
    email: str | None = None
    phone: str | None = None
    webhook: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> AgencyOnCall:
        if not (self.email or self.phone or self.webhook):
            raise ValueError("give at least one of email, phone, webhook: where the agency hears of alerts")
        return self


class AlertingConfig(_Strict):
    email: SmtpSettings | None = None
    sms: SmsGateway | None = None
    agency: AgencyOnCall | None = None
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


def agency_contact(config: AlertingConfig) -> ContactPlan | None:
    """The agency's on-call as an alert recipient (in the lab the receiver stands in); None if not configured."""
    if config.agency is not None:
        agency = config.agency
        return ContactPlan(agency.name, AGENCY_ROLE, agency.email, agency.phone, agency.webhook)
    if config.receiver_url:
        return ContactPlan(LAB_AGENCY, AGENCY_ROLE, None, None, config.receiver_url)
    return None


def _address(channel: str, contact: ContactPlan) -> str | None:
    return {"email": contact.email, "sms": contact.phone, "webhook": contact.webhook}[channel]


def recipients(channels: tuple[str, ...], contacts: tuple[ContactPlan, ...]) -> list[tuple[str, ContactPlan]]:
    """(channel, contact) for every contact reachable on a channel the tier alerts by."""
    return [(channel, contact) for channel in channels for contact in contacts if _address(channel, contact)]


def _webhook(url: str, plain: bool) -> dict[str, Any]:
    if plain:
        return {
            "type": "webhook",
            "webhookURL": url,
            "webhookContentType": "custom",
            "webhookCustomBody": PLAIN_WEBHOOK_BODY,
        }
    return {"type": "webhook", "webhookURL": url, "webhookContentType": "json"}


def provider_config(
    config: AlertingConfig, client_id: str, channel: str, contact: ContactPlan, *, plain: bool = False
) -> dict[str, Any]:
    """The Kuma notification fields (without name) that deliver `channel` alerts to `contact`.

    `plain`: the recipient is the client's, who reads plain words rather than Kuma's technical detail.
    """
    address = _address(channel, contact)
    if address is None:
        raise AlertingError(f"contact {contact.name!r} has no {channel} address")
    if config.receiver_url:
        query = urlencode({"client": client_id, "channel": channel, "to": contact.name})
        return _webhook(f"{config.receiver_url}?{query}", plain)
    if channel == "webhook":
        return _webhook(address, plain)
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
        if plain:
            fields.update(customSubject=PLAIN_EMAIL_SUBJECT, customBody=PLAIN_EMAIL_BODY)
        return fields
    if config.sms is None:
        raise AlertingError("the tier alerts by sms but the alerting config has no sms (gateway) section")
    sms = config.sms
    fields = {"type": sms.provider, **sms.settings, sms.recipient_field: address}
    for field, env in sms.secret_env.items():
        fields[field] = _secret(env, f"sms.{field}")
    return fields
