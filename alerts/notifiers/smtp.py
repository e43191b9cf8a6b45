"""E-mail over SMTP (plain, STARTTLS or implicit TLS), standard library only.

Target: ``smtp://user:pass@host:587/?from=a@x.cn&to=b@x.cn,c@x.cn&security=starttls``
(``smtps://`` implies ssl; ``cafile=`` trusts a private CA).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from alerts.notifiers.base import DeliveryError, Notifier

SECURITY = ("starttls", "ssl", "none")


class SmtpNotifier(Notifier):
    name = "email"

    def __init__(self, target: str, timeout: float = 10.0) -> None:
        super().__init__(target, timeout)
        parts = urlsplit(target)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "e-mail target must look like smtp://user:pass@host:port/?from=..&to=.."
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.host = parts.hostname
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.security = query.get("security", "ssl" if parts.scheme == "smtps" else "starttls")
        if self.security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}")
        self.port = parts.port or (465 if self.security == "ssl" else 587)
        self.sender = query.get("from") or (self.user if "@" in self.user else "")
        self.recipients = [a.strip() for a in query.get("to", "").split(",") if a.strip()]
        if not self.sender or not self.recipients:
            raise ValueError("e-mail target needs from= and to= addresses")
        self.cafile = query.get("cafile")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def send(self, title: str, body: str) -> None:
        msg = EmailMessage()
        msg["Subject"] = title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="govpulse")
        msg.set_content(body, charset="utf-8")
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=self._context())
                if self.user and self.password:
                    client.login(self.user, self.password)
                refused = client.send_message(msg)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{self.safe_target}: {type(exc).__name__}: {exc}"[:300]) from None
        if refused:
            raise DeliveryError(f"{self.safe_target}: recipients refused: {sorted(refused)}")
