"""Images in messages: which files are images, and of what media type — read from their first bytes, never from
their names (a `.png` may be anything; the model's upstream refuses what it cannot decode)."""

# Files a message's `image_file` part may name: uploaded for vision or for assistants, or made by the code
# interpreter (its figures), which a client may hand back.
IMAGE_PURPOSES = ("vision", "assistants", "assistants_output")
MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
HEAD_BYTES = 16  # enough for every signature below


def sniff(head: bytes) -> str | None:
    """The media type of an image file from its first bytes (PNG, JPEG, GIF or WEBP, what vision models read)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None
