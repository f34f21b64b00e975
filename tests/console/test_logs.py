"""No password, key, session or secret ever reaches a log: a real `imagegate serve` process with
its access log on, walked through every console flow that handles one."""

from __future__ import annotations

import re

from console_support import ConsoleClient, csrf_of
from harness import wait_for
from imagegate.config import Settings
from processes import imagegate_process, responds

LINK = re.compile(r"(http://\S+/console/set-password/([A-Za-z0-9_\-]+))")


async def test_no_secret_reaches_the_log(settings: Settings) -> None:
    operator_password, member_password = "operator passphrase 1", "member passphrase 22"
    newer_password, wrong_password = "member passphrase 333", "not the password 4444"
    log_dir = settings.data_dir.parent / "logs"
    async with imagegate_process(
        settings, "serve", "--port", str(settings.port), SIGNUP="open", ACCESS_LOG="true"
    ) as process:
        base = f"http://127.0.0.1:{settings.port}"
        async with ConsoleClient(base) as operator, ConsoleClient(base) as member:
            await wait_for(lambda: responds(operator.http), within=30)
            banner = "".join(p.read_text() for p in log_dir.iterdir())
            link, token = LINK.search(banner).groups()  # type: ignore[union-attr]
            await operator.submit(
                link, link, {"password": operator_password, "confirm": operator_password}
            )
            await member.sign_up("member@example.com", member_password)
            created = await member.submit("/console/keys/new", "/console/keys", {"name": "ci"})
            key = re.search(r'id="new-key"[^>]*>(sk-[^<]+)<', created.text).group(1)  # type: ignore[union-attr]
            assert (await member.http.get("/v1/credits", headers=bearer(key))).status_code == 200
            page = await member.get("/console/webhooks")
            revealed = await member.http.post(
                "/console/webhooks/reveal", data={"csrf_token": csrf_of(page.text)}
            )
            secret = re.search(r"whsec_[A-Za-z0-9+/=]+", revealed.text).group(0)  # type: ignore[union-attr]
            await member.submit(
                "/console/password",
                "/console/password",
                {"current": member_password, "password": newer_password, "confirm": newer_password},
            )
            sessions = [str(c.http.cookies.get("ig_session")) for c in (operator, member)]
            async with ConsoleClient(base) as guesser:
                await guesser.sign_in("member@example.com", wrong_password)
        process.terminate()
        await process.wait()
    log = "".join(p.read_text() for p in log_dir.iterdir())
    assert "POST /console/login" in log  # the access log was on
    assert "GET /console/set-password/[redacted]" in log  # the link was visited, masked
    assert log.count(token) == 1  # the first-start banner shows the link once, by design
    for secret_text in (
        operator_password,
        member_password,
        newer_password,
        wrong_password,
        key,
        secret,
        *sessions,
    ):
        assert secret_text not in log


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
