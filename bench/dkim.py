"""CPU cost of DKIM signing and the VERP return path per mail, on real rendered cart reminders.

Renders N reminders as delivery does (`prepare_batch` on a generated shop, SQLite), then times, in
process CPU and best of three passes:
  mime         build_mime alone (what a send cost before)
  sealed       build_mime + X-Okaeri-Ref + VERP sender + DKIM signature (EmailChannel._sealed)
  sign         the signature alone (plugin.channels.dkim, RSA in OpenSSL)
  dkimpy       dkimpy's own dkim.sign on the same bytes (its pure-Python RSA), for comparison
  verify       dkim.verify of a signed mail (what a receiver spends; a DNS stub, no network)
and, with --smtp, the whole send (EmailChannel.send to bench/smtp_sink.py in its own process, one
thread) without and with DKIM + VERP, alternating, three rounds: mails per second and sender CPU.

    python -m bench.dkim [--messages 1000] [--bits 2048] [--smtp]
"""
from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update
from sqlmodel import SQLModel, col

from bench.host import header
from bench.shopgen import idle_cart_shop
from plugin.channels.base import OutgoingMessage
from plugin.channels.dkim import DkimSigner
from plugin.channels.email import EmailChannel, SmtpConfig, build_mime
from plugin.channels.verp import ReturnPath
from plugin.clock import daytime_zone
from plugin.crypto import Signer
from plugin.delivery.batch import prepare_batch
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Message, ScenarioSetting, Shop

SECRET = "bench-secret-key-0123456789abcdef0123456789"
SENDER = "no-reply@okaeri.example"


def rendered(count: int) -> list[OutgoingMessage]:
    """`count` cart reminders rendered by the email channel, as delivery renders them."""
    workdir = tempfile.mkdtemp(prefix="okaeri-bench-")
    url = f"sqlite:///{workdir}/bench.db"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    runtime = build_runtime(Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET),  # type: ignore[call-arg]
                            engine=engine, broker=build_broker("memory://"))
    shop_id = idle_cart_shop(engine, count, runtime.clock.now(), SECRET)
    with engine.begin() as connection:
        connection.execute(update(Shop).values(timezone=daytime_zone()))
        connection.execute(update(ScenarioSetting).values(holdout_percent=0))
    run_shop_tick(runtime, shop_id)
    with runtime.sessions() as session:
        rows = list(session.execute(select(Message).order_by(col(Message.id))).scalars())
        outgoing = [mail for start in range(0, len(rows), 50)
                    for _, mail in prepare_batch(runtime, session, rows[start:start + 50])[0]]
        session.rollback()
    runtime.close()
    return outgoing


def per_mail_ms(work: Callable[[OutgoingMessage], object], mails: Sequence[OutgoingMessage]) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for mail in mails:
            work(mail)
        best = min(best, time.process_time() - began)
    return best / len(mails) * 1000


def send_rounds(mails: Sequence[OutgoingMessage], signer: DkimSigner, rounds: int = 3) -> list[tuple[str, float, float]]:
    """(side, mails/s, sender CPU ms per mail) per round, plain and signed alternating."""
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(port)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    config = SmtpConfig("127.0.0.1", port, "", "", False, 10.0, SENDER)
    out = []
    try:
        for _ in range(rounds):
            for side, extras in (("plain", {}), ("DKIM+VERP", {"dkim": signer, "return_path": ReturnPath(Signer(SECRET), "b.example")})):
                channel = EmailChannel(config, pool_size=1, **extras)  # type: ignore[arg-type]
                channel.send(mails[0])  # connect outside the timing
                wall, cpu = time.perf_counter(), time.process_time()
                for mail in mails:
                    channel.send(mail)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                channel.close()
                out.append((side, len(mails) / wall, cpu / len(mails) * 1000))
    finally:
        sink.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--smtp", action="store_true", help="also time whole sends to a local SMTP sink")
    args = parser.parse_args()
    mails = rendered(args.messages)
    key = rsa.generate_private_key(public_exponent=65537, key_size=args.bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner("okaeri.example", "bench", pem)
    channel = EmailChannel(SmtpConfig("127.0.0.1", 25, "", "", False, 10.0, SENDER), pool_size=1, dkim=signer,
                           return_path=ReturnPath(Signer(SECRET), "bounce.okaeri.example"))
    raws = {id(m): build_mime(m, SENDER) for m in mails}
    few = mails[:max(1, len(mails) // 10)]  # dkimpy's own RSA is slow: a tenth of the mails is enough
    signed = {id(m): channel._sealed(m)[1] for m in few}
    sizes = sorted(len(raw) for raw in raws.values())
    figures = {
        "mime": per_mail_ms(lambda m: build_mime(m, SENDER), mails),
        "sealed": per_mail_ms(channel._sealed, mails),
        "sign": per_mail_ms(lambda m: signer.sign(raws[id(m)]), mails),
        "dkimpy": per_mail_ms(lambda m: dkim.sign(raws[id(m)], b"bench", b"okaeri.example", pem,
                                                  canonicalize=(b"relaxed", b"simple")), few),
        "verify": per_mail_ms(lambda m: dkim.verify(signed[id(m)], dnsfunc=lambda name, timeout=5: record), few),
    }
    assert all(dkim.verify(raw, dnsfunc=lambda name, timeout=5: record) for raw in signed.values())
    print(f"# {header()} · "
          f"{len(mails)} mails, median {sizes[len(sizes) // 2]} bytes · RSA-{args.bits}")
    for name, ms in figures.items():
        print(f"{name:>8} {ms:8.3f} ms CPU per mail")
    print(f"DKIM + VERP add {figures['sealed'] - figures['mime']:.3f} ms per mail "
          f"({figures['sealed'] / figures['mime'] - 1:+.0%} on build_mime); dkimpy's own signing would add "
          f"{figures['dkimpy']:.3f} ms")
    if args.smtp:
        for side, rate, cpu in send_rounds(mails, signer):
            print(f"send {side:>9}: {rate:6.0f} mails/s, {cpu:.3f} ms sender CPU per mail (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
