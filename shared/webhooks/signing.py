"""Standard Webhooks signatures (https://www.standardwebhooks.com), as OpenAI's own webhooks are signed, so that
the official SDK's `client.webhooks.verify_signature(body, headers, secret=...)` and `unwrap` accept them.

    webhook-id:        the delivery's id, the same on every attempt (receivers deduplicate on it)
    webhook-timestamp: when this attempt was signed (receivers refuse ones older than 5 minutes)
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the key being the base64
                       part of the "whsec_…" secret, decoded
"""

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt: signed afresh each time, so a retry hours later still verifies."""
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, webhook_id, timestamp, body)}
