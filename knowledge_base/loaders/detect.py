"""File type detection (content first, extension second) and text decoding."""

from __future__ import annotations

import io
import re
from pathlib import Path

from knowledge_base.errors import LoadError
from knowledge_base.loaders.blocks import Format

# Extensions picked up when a directory is walked (files named explicitly are sniffed).
EXTENSIONS: dict[str, Format] = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg media file"),
    (b"SQLite format 3\x00", "an SQLite database"),
]


def detect_format(data: bytes, name: str) -> Format:
    """The format of ``data``, from its content first and its name second.

    Raises ``LoadError`` for empty and binary files and for formats that are not supported.
    """
    suffix = Path(name).suffix.lower()
    if not data.strip():
        raise LoadError(name, "the file is empty; add some text or remove it from the batch")
    head = data[:8192]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        import zipfile

        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile as e:
            raise LoadError(name, f"looks like a damaged zip/docx file ({e})") from None
        if "word/document.xml" in names:
            return "docx"
        raise LoadError(
            name, "is a zip archive, not a Word .docx; unzip it and add the documents inside"
        )
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise LoadError(name, "is an old binary Office file (.doc); save it as .docx or PDF first")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise LoadError(name, f"is {what}, not a text document (expected {_supported()})")
    if _looks_binary(head):
        raise LoadError(
            name,
            f"looks like a binary file, not text (despite its name); expected {_supported()}",
        )
    text_head = _sniff_text(head).lstrip("\ufeff \t\r\n").lower()
    if text_head.startswith(("<!doctype html", "<html", "<?xml")) and (
        "<html" in text_head or "<body" in text_head
    ):
        return "html"
    if suffix in EXTENSIONS and EXTENSIONS[suffix] in ("md", "txt", "html"):
        fmt = EXTENSIONS[suffix]
        if fmt == "txt" and re.match(r"<(p|div|h[1-6]|body|head|section|article)\b", text_head):
            return "html"
        return fmt
    if suffix in (".pdf", ".docx"):
        raise LoadError(
            name,
            f"has the extension {suffix} but its content is not a {suffix[1:].upper()} file "
            "(damaged, or renamed from another format)",
        )
    # Unknown extension but text content: Markdown if it has headings, else plain text.
    if re.search(r"(?m)^#{1,6} \S", _sniff_text(head)):
        return "md"
    return "txt"


def _supported() -> str:
    return ".md, .txt, .pdf, .docx or .html"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 BOM: text
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > max(4, len(head) // 50)


def _sniff_text(head: bytes) -> str:
    return head.decode("utf-8", errors="replace")


def decode_text(data: bytes, name: str) -> str:
    """Bytes -> str: UTF-8 (BOM allowed) or UTF-16 with a BOM; anything else is refused.

    Guessing a legacy encoding would silently garble symbols (°, ², ½), so the message asks
    for the file to be re-saved as UTF-8 instead.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(name, f"is not valid UTF-16 text ({e.reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(
            name,
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-save it as UTF-8 (most editors: Save As > Encoding > UTF-8)",
        ) from None


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
