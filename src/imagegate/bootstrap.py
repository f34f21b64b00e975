"""First start: a demo account with credits and a key, announced once with a curl to paste."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from imagegate.billing.service import create_account
from imagegate.db.models import Meta
from imagegate.keys.service import create_key
from imagegate.services import Services
from imagegate.users import service as users

DEMO_DONE = "demo_account_created"
FIRST_TASK = {
    "model": "ideogram-v4",
    "input": {
        "prompt": 'A minimalist coffee shop logo with the text "Daily Brew"',
        "size": "1:1",
        "rendering_speed": "BALANCED",
        "output_format": "png",
    },
}


@dataclass(frozen=True)
class FirstStart:
    account_id: str
    key: str  # the demo API key, plaintext, shown once
    operator_email: str
    operator_token: str  # the one-time link that sets the operator's password


async def create_demo_account(services: Services) -> FirstStart | None:
    """The demo account, its key and the first operator user (with a one-time link to set a
    password) on the very first start; None ever after."""
    now = services.clock.now()
    email = services.settings.admin_email
    try:
        async with services.db.transaction() as session:
            if await session.scalar(select(Meta.value).where(Meta.key == DEMO_DONE)) is not None:
                return None
            account = await create_account(session, "demo", services.settings.demo_credits, now)
            _key, plaintext = await create_key(session, services.hasher, account.id, "demo", now)
            operator = await users.create_user(session, account.id, email, "operator", now)
            token = await users.issue_link(session, "password", now, user_id=operator.id)
            session.add(Meta(key=DEMO_DONE, value=account.id))
    except (IntegrityError, ValueError):
        # Another process started at the same moment and made them first (its operator's
        # email taken, or a unique index): nothing to announce here.
        return None
    return FirstStart(account.id, plaintext, operator.email, token)


def demo_banner(base_url: str, first: FirstStart, credits: int) -> str:
    key = first.key
    return f"""
imagegate: first start. Created a demo account ({first.account_id}) with {credits} credits
and this API key, shown only this once (make more with `imagegate admin key create`):

    {key}

The web console is at {base_url}/console. Set the password of its first operator,
{first.operator_email}, with this one-time link (valid 7 days; a new one:
`imagegate admin user reset-password {first.operator_email}`):

    {users.password_link(base_url, first.operator_token)}

Create a task:

curl -X POST {base_url}/v1/images/generations \\
-H "Authorization: Bearer {key}" \\
-H "Content-Type: application/json" \\
-d '{json.dumps(FIRST_TASK)}'

Then poll it:   curl {base_url}/v1/tasks/<taskId> -H "Authorization: Bearer {key}"
Your balance:   curl {base_url}/v1/credits -H "Authorization: Bearer {key}"
"""
