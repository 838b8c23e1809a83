"""Mail charset labels read as mail clients read them (R218). A label names a narrower codec than
the sender's program wrote in (`gb2312` for GBK text, `shift_jis` for Windows' CP932, `euc-kr`
for CP949, `big5` for HKSCS, `iso-2022-jp` with NEC's ① and ㈱), or one Python does not know at
all (`iso-8859-8-i`, `windows-874`, `x-mac-cyrillic`): Python's codecs garbled names and text,
and a watch rule on a Hebrew word never fired. `codec_for` gives the codec clients use (the
WHATWG encoding standard's), `relabel_header_block` rewrites labels in encoded words and RFC 2231
values before the email library decodes them, and the labels Python does not know are made known
to it (a codec search function), so a forwarded message's headers read the same way.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable

__all__ = ["MAIL_CHARSET", "codec_for", "decode_iso2022_jp", "relabel_header_block"]

_SUPERSETS = {
    "gb18030": "gb2312 gb-2312-80 gb-2312 csgb2312 euc-cn x-euc-cn chinese iso-ir-58 gbk x-gbk"
    " cp936 windows-936 ms936",
    "cp932": "shift-jis sjis x-sjis s-jis windows-31j ms-kanji csshiftjis x-ms-cp932"
    " x-mac-japanese",
    "cp949": "euc-kr cseuckr ks-c-5601-1987 ks-c-5601 ksc5601 ksc-5601 iso-ir-149 korean"
    " windows-949 x-windows-949 x-mac-korean",
    "big5hkscs": "big5 cn-big5 x-x-big5 csbig5 big5-hkscs x-mac-chinesetrad",
    "cp50221": "iso-2022-jp csiso2022jp cp50220 cp50222",
    "cp874": "windows-874 tis-620 iso-8859-11 x-mac-thai",
    "cp1252": "iso-8859-1 iso8859-1 latin-1 latin1 l1",
    "cp1254": "iso-8859-9 latin5 l5",
    "mac-latin2": "x-mac-ce mac-ce x-mac-centraleurroman",
    "mac-cyrillic": "x-mac-ukrainian",
    "utf-8": "unicode-1-1-utf-8 x-unicode20utf8 unicode20utf8",
}
"""Labels read as the wider codec clients decode them with (the Latin-1 → Windows-1252 rule
Steward had for bodies is one of them)."""
_LABELS = {label: codec for codec, labels in _SUPERSETS.items() for label in labels.split()}
_ISO_VARIANT = re.compile(r"(?:cs)?iso-?8859-?(\d{1,2})-?[ie]")
"""RFC 1556's `iso-8859-8-i` (logical Hebrew) and `-e`: the same bytes as the base charset."""
_CANON = re.compile(r"[-_ ]+")


def _key(label: str) -> str:
    return _CANON.sub("-", label.strip().strip('"').lower())


def _known(name: str) -> str | None:
    """The codec Python has under `name`, if any."""
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


MAIL_CHARSET = re.compile(
    r"ascii|utf-(7|8|8-sig|16|16-be|16-le|32|32-be|32-le)|iso8859-\d+|cp\d+|mac-[a-z0-9]+"
    r"|koi8-[a-z]|big5(hkscs)?|euc_[a-z0-9_]+|gb(2312|k|18030)|hz|iso2022_[a-z0-9_]+|johab"
    r"|shift_jis[a-z0-9_]*|ptcp154|kz1048|tis-620|hp-roman8|cp50221"
)
"""Python's names of the charsets mail is written in. A sender names the codec: `punycode`
takes time growing with the square of the text (2 MB: 140 s, review 118), `unicode_escape`
makes any code point, `bz2` and `zlib` decompress a few bytes into gigabytes (R219), so a name
Python knows is not enough."""


def codec_for(label: str) -> str | None:
    """The codec mail clients read `label` with, when it is not Python's own reading of it
    (a superset, or a label Python does not know); None to use Python's. Only a charset mail
    is written in (`MAIL_CHARSET`): R219's `x-bz2` gave bz2, for any feed or page too."""
    target = _codec_for(label)
    if target is None:
        return None
    name = "cp50221" if _key(target) == "cp50221" else _known(target)
    return target if name is not None and MAIL_CHARSET.fullmatch(name) else None


@functools.lru_cache(maxsize=256)
def _codec_for(label: str) -> str | None:
    key = _key(label)
    if key in _LABELS:
        return _LABELS[key]
    if match := _ISO_VARIANT.fullmatch(key):
        return _known(f"iso8859-{match[1]}")
    if key.startswith("x-") and len(key) > 2:  # x-mac-cyrillic, x-cp1251, x-euc-jp
        rest = key[2:]
        return _LABELS.get(rest) or _known(rest) or _known(rest.replace("-", ""))
    return None


def _jis_to_cp932(j1: int, j2: int) -> bytes:
    """A JIS X 0208 pair as the Shift_JIS bytes of the same cell (NEC's rows 13 and 89-92,
    where Windows puts ① ㈱ 髙, included)."""
    s1 = ((j1 - 0x21) >> 1) + 0x81
    s1 += 0x40 if s1 > 0x9F else 0
    s2 = j2 + (0x1F + (j2 >= 0x60) if j1 & 1 else 0x7E)  # 0x7F is skipped in Shift_JIS
    return bytes((s1, s2))


_ESCAPES = re.compile(rb"(\x1b(?:\(B|\(J|\(I|\$@|\$B|\$\(B|\$\(D|\$\(@))")
_TWO_BYTE = (b"\x1b$@", b"\x1b$B", b"\x1b$(B", b"\x1b$(@")


def decode_iso2022_jp(data: bytes) -> str:
    """ISO-2022-JP as Windows (CP50221) and mail clients read it: Python's codecs know JIS X
    0208 only, so NEC's ① and ㈱ and half-width katakana were U+FFFD. Never raises."""
    try:
        return data.decode("iso2022_jp_2")
    except UnicodeDecodeError:
        pass
    text: list[str] = []
    mode = b"\x1b(B"
    for piece in _ESCAPES.split(data):
        if _ESCAPES.fullmatch(piece):
            mode = piece
        elif mode in _TWO_BYTE:
            pairs = (
                _jis_to_cp932(piece[i], piece[i + 1])
                if 0x21 <= piece[i] <= 0x7E and 0x21 <= piece[i + 1] <= 0x7E
                else b"?"
                for i in range(0, len(piece) - 1, 2)
            )
            text.append(b"".join(pairs).decode("cp932", "replace"))
        elif mode == b"\x1b(I":  # half-width katakana: the Shift_JIS byte is 0x80 higher
            text.append(
                bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in piece).decode(
                    "cp932", "replace"
                )
            )
        elif mode == b"\x1b$(D":  # JIS X 0212, which Python does know
            text.append((mode + piece).decode("iso2022_jp_2", "replace"))
        else:
            text.append(piece.decode("ascii", "replace"))
    return "".join(text)


def _cp50221_decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
    return decode_iso2022_jp(bytes(data)), len(data)


def _codec_info(
    name: str, base: codecs.CodecInfo, decode: Callable[..., tuple[str, int]] | None = None
) -> codecs.CodecInfo:
    return codecs.CodecInfo(
        _is_text_encoding=True,  # `codec_for` gives only charsets mail is written in
        name=name,
        encode=base.encode,
        decode=decode or base.decode,
        incrementalencoder=base.incrementalencoder,
        incrementaldecoder=base.incrementaldecoder,
        streamreader=base.streamreader,
        streamwriter=base.streamwriter,
    )


def _search(name: str) -> codecs.CodecInfo | None:
    """Python's codec lookup, taught the labels it did not know (asked only after its own)."""
    if _key(name) == "cp50221":  # read piece by piece (httpx's lines, an SSE stream: R220)
        base = codecs.lookup("iso2022_jp_2")  # as Python's ISO-2022-JP; whole, as Windows'
        return _codec_info("cp50221", base, decode=_cp50221_decode)
    target = codec_for(name)
    if target is None or _key(target) == _key(name):
        return None
    return _codec_info(target, codecs.lookup(target))


codecs.register(_search)

_ENCODED_WORD = re.compile(rb"(=\?)([^?*\s]{1,40})(\*[^?\s]{0,40})?(\?[BbQq]\?)")
_EXTENDED_VALUE = re.compile(rb"(\*(?:\d{1,3}\*)?[ \t]*=[ \t]*\"?)([A-Za-z0-9_.:-]{1,40})(')")


def _relabel(match: re.Match[bytes]) -> bytes:
    codec = codec_for(match[2].decode("ascii", "replace"))
    if codec is None:
        return match[0]
    return match[1] + codec.encode() + b"".join(g for g in match.groups()[2:] if g)


def relabel_header_block(head: bytes) -> bytes:
    """`head` with the charset of each encoded word (`=?gb2312?B?…?=`) and RFC 2231 value
    (`filename*=shift_jis''…`) named as clients read it, so the email library decodes it so."""
    if b"=?" in head:
        head = _ENCODED_WORD.sub(_relabel, head)
    if b"*" in head:
        head = _EXTENDED_VALUE.sub(_relabel, head)
    return head
