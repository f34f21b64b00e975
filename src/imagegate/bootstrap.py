"""First start: a demo account with credits and a key, announced once with a curl to paste."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from imagegate.billing.service import create_account
from imagegate.db.models import Meta
from imagegate.keys.service import create_key
from imagegate.services import Services

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


async def create_demo_account(services: Services) -> tuple[str, str] | None:
    """(account id, plaintext key) on the very first start; None ever after."""
    now = services.clock.now()
    try:
        async with services.db.transaction() as session:
            if await session.scalar(select(Meta.value).where(Meta.key == DEMO_DONE)) is not None:
                return None
            account = await create_account(session, "demo", services.settings.demo_credits, now)
            _key, plaintext = await create_key(session, services.hasher, account.id, "demo", now)
            session.add(Meta(key=DEMO_DONE, value=account.id))
    except IntegrityError:  # another process started first and made it: nothing to announce
        return None
    return account.id, plaintext


def demo_banner(base_url: str, account_id: str, key: str, credits: int) -> str:
    return f"""
imagegate: first start. Created a demo account ({account_id}) with {credits} credits
and this API key, shown only this once (make more with `imagegate admin key create`):

    {key}

Create a task:

curl -X POST {base_url}/v1/images/generations \\
-H "Authorization: Bearer {key}" \\
-H "Content-Type: application/json" \\
-d '{json.dumps(FIRST_TASK)}'

Then poll it:   curl {base_url}/v1/tasks/<taskId> -H "Authorization: Bearer {key}"
Your balance:   curl {base_url}/v1/credits -H "Authorization: Bearer {key}"
"""
