"""Each channel delivers for real to a local server that checks format and signature."""

from __future__ import annotations

import email
import json
from email.policy import default as default_policy

import pytest

from alerts.notifiers import (
    ChannelError,
    DeliveryError,
    build_notifier,
    build_notifiers,
    enabled_channels,
    mask_url,
    read_outbox,
    split_text,
)
from govpulse.settings import load

from .conftest import DINGTALK_SECRET, FEISHU_SECRET


def _settings(**kw):
    return load(cli=kw, env={})


def test_dingtalk_signed_message_is_accepted(receiver, tmp_path):
    url = f"{receiver.base}/robot/send?access_token=tok123&secret={DINGTALK_SECRET}"
    n = build_notifier("dingtalk", _settings(**{"alerts.dingtalk_url": url}), tmp_path)
    n.send("【特急】测试", "第一行\n第二行")
    (req,) = receiver.requests
    assert req["query"]["access_token"] == ["tok123"]
    assert "secret" not in req["query"]  # the secret never travels
    assert req["json"]["markdown"]["title"] == "【特急】测试"
    assert "第二行" in req["json"]["markdown"]["text"]


def test_dingtalk_wrong_secret_is_refused(receiver, tmp_path):
    url = f"{receiver.base}/robot/send?access_token=tok123&secret=SECwrong"
    n = build_notifier("dingtalk", _settings(**{"alerts.dingtalk_url": url}), tmp_path)
    with pytest.raises(DeliveryError) as info:
        n.send("t", "b")
    assert "310000" in str(info.value)
    assert "SECwrong" not in str(info.value) and "tok123" not in str(info.value)


def test_wecom_and_size_limit(receiver, tmp_path):
    n = build_notifier(
        "wecom",
        _settings(**{"alerts.wecom_url": f"{receiver.base}/cgi-bin/webhook/send?key=k1"}),
        tmp_path,
    )
    n.send("标题", "内容")
    assert receiver.requests[0]["json"]["markdown"]["content"].startswith("**标题**")
    with pytest.raises(DeliveryError, match="40058"):  # too long for one WeCom message
        n.send("标题", "长" * 3000)
    parts = split_text("长" * 3000, n.max_bytes)
    for part in parts:
        n.send("标题", part)  # split parts are each accepted
    assert len(parts) == 3


def test_feishu_signature(receiver, tmp_path):
    url = f"{receiver.base}/open-apis/bot/v2/hook/abcdef0123456789abcd?secret={FEISHU_SECRET}"
    n = build_notifier("feishu", _settings(**{"alerts.feishu_url": url}), tmp_path)
    n.send("热点", "正文")
    body = receiver.requests[0]["json"]
    assert body["content"]["text"] == "热点\n正文" and body["sign"]
    bad = build_notifier(
        "feishu", _settings(**{"alerts.feishu_url": url.replace(FEISHU_SECRET, "nope")}), tmp_path
    )
    with pytest.raises(DeliveryError, match="19021"):
        bad.send("热点", "正文")


def test_webhook_and_http_500(receiver, tmp_path):
    n = build_notifier(
        "webhook", _settings(**{"alerts.webhook_url": f"{receiver.base}/hook"}), tmp_path
    )
    n.send("标题", "正文")
    assert receiver.requests[0]["json"] == {"source": "govpulse", "title": "标题", "text": "正文"}
    assert receiver.requests[0]["content_type"].startswith("application/json")
    receiver.fail_next = 1
    with pytest.raises(DeliveryError, match="HTTP 500"):
        n.send("标题", "正文")


def test_unreachable_endpoint_is_a_delivery_error(tmp_path):
    n = build_notifier(
        "webhook", _settings(**{"alerts.webhook_url": "http://127.0.0.1:9/x"}), tmp_path
    )
    with pytest.raises(DeliveryError):
        n.send("t", "b")


def test_apprise_json_target(receiver, tmp_path):
    target = receiver.base.replace("http://", "json://") + "/apprise"
    n = build_notifier("apprise", _settings(**{"alerts.apprise_urls": target}), tmp_path)
    n.send("标题", "正文")
    (req,) = receiver.requests
    assert req["path"] == "/apprise" and req["json"]["title"] == "标题"
    assert req["json"]["message"] == "正文"


def test_email_via_local_smtp(smtp_server, tmp_path):
    url = (
        f"smtp://127.0.0.1:{smtp_server.port}/?from=alerts@gov.example"
        "&to=duty@gov.example,chief@gov.example&security=none"
    )
    n = build_notifier("email", _settings(**{"alerts.email_url": url}), tmp_path)
    n.send("【紧急】供水中断", "多个小区停水\n请尽快处理")
    (env,) = smtp_server.messages
    assert sorted(env.rcpt_tos) == ["chief@gov.example", "duty@gov.example"]
    msg = email.message_from_bytes(env.original_content, policy=default_policy)
    assert msg["Subject"] == "【紧急】供水中断"
    assert "请尽快处理" in msg.get_content()


def test_email_starttls_refused_by_plain_server(smtp_server, tmp_path):
    url = f"smtp://127.0.0.1:{smtp_server.port}/?from=a@x.cn&to=b@x.cn&security=starttls"
    n = build_notifier("email", _settings(**{"alerts.email_url": url}), tmp_path)
    with pytest.raises(DeliveryError, match=r"(?i)starttls"):
        n.send("t", "b")
    assert smtp_server.messages == []  # never falls back to plain text


def test_bad_targets_and_channel_choice(tmp_path):
    with pytest.raises(ChannelError, match="from= and to="):
        build_notifier("email", _settings(**{"alerts.email_url": "smtp://h:25/"}), tmp_path)
    with pytest.raises(ChannelError, match="unknown channel"):
        build_notifier("pager", _settings(), tmp_path)
    with pytest.raises(ChannelError, match=r"alerts\.wecom_url"):
        build_notifier("wecom", _settings(), tmp_path)
    assert enabled_channels(_settings()) == ["outbox"]
    s = _settings(**{"alerts.webhook_url": "http://127.0.0.1:1/h"})
    assert enabled_channels(s) == ["webhook"]
    assert list(build_notifiers(s, tmp_path)) == ["webhook"]


def test_outbox_and_masking(tmp_path):
    n = build_notifier("outbox", _settings(), tmp_path)
    n.send("标题", "正文")
    n.send("标题2", "正文2")
    (tmp_path / "alerts_outbox.jsonl").open("a").write("not json\n")
    entries = read_outbox(tmp_path / "alerts_outbox.jsonl")
    assert [e["title"] for e in entries] == ["标题2", "标题"]
    assert (
        json.loads((tmp_path / "alerts_outbox.jsonl").read_text().splitlines()[0])["body"] == "正文"
    )
    assert "s3cret" not in mask_url("smtp://u:s3cret@h:25/?from=a@b&to=c@d")
    assert "tok9" not in mask_url("https://x/robot/send?access_token=tok9&secret=SEC1")


def test_split_text_keeps_everything():
    text = "\n".join(f"第{i}行：" + "内容" * (i % 50) for i in range(400)) + "\n" + "长" * 9000
    parts = split_text(text, 3800)
    assert "".join(parts) == text
    assert all(len(p.encode()) <= 3800 for p in parts)
    assert split_text("短", 3800) == ["短"]


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_email_starttls_with_login(tmp_path):
    """STARTTLS against a TLS-requiring aiosmtpd server, with AUTH, trusting its certificate."""
    import socket
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((session.auth_data, envelope))
            return "250 OK"

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"duty" and auth_data.password == b"p@ss"
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=check,
        auth_require_tls=True,
    )
    controller.start()
    try:
        url = (
            f"smtp://duty:p%40ss@127.0.0.1:{port}/?from=alerts@gov.example&to=duty@gov.example"
            f"&security=starttls&cafile={cert}"
        )
        n = build_notifier("email", _settings(**{"alerts.email_url": url}), tmp_path)
        n.send("【特急】测试", "加密投递")
        assert len(received) == 1 and received[0][0].login == b"duty"
        untrusted = build_notifier(
            "email", _settings(**{"alerts.email_url": url.split("&cafile")[0]}), tmp_path
        )
        with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            untrusted.send("t", "b")
        assert len(received) == 1
    finally:
        controller.stop()
