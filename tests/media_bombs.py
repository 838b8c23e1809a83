"""Hostile PDFs built by hand for the media tests (no library beyond the standard one)."""

from __future__ import annotations

import io
import zlib


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalog), with a real xref."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(data, 9)
    return (
        b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), extra)
        + packed
        + b"\nendstream"
    )


def _pages(count: int, first: int, resources: bytes) -> list[bytes]:
    """The page tree (object 2) and `count` pages numbered from `first`, drawing object 3."""
    kids = b" ".join(b"%d 0 R" % (first + i) for i in range(count))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R"
        b" /Resources " + resources + b" >>"
    )
    return [b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count, *[page] * count]


def text_pdf(pages: int, text: bytes) -> bytes:
    """`pages` pages drawing one shared compressed content stream that shows `text`: a few KB
    that read as `pages` times `text`."""
    tree = _pages(pages, 5, b"<< /Font << /F1 4 0 R >> >>")
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            tree[0],
            _stream(b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *tree[1:],
        ]
    )


def slow_pdf_pages(pages: int = 50, fan: int = 40, depth: int = 4, ops: int = 2000) -> bytes:
    """`pages` pages sharing one content stream and one tree of forms (`fan` wide, `depth`
    deep, each leaf `ops` drawing operations): no text, a few KB that hold a PDF reader until
    its deadline."""
    first = 4 + pages  # the first form, after the catalog, the tree, the content and the pages
    tree = _pages(pages, 4, b"<< /XObject << /X %d 0 R >> >>" % first)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", tree[0], _stream(b"/X Do\n" * fan)]
    objects += tree[1:]
    for level in range(depth):
        number = first + level
        if level + 1 < depth:
            body = b"/X Do\n" * fan
            res = b"/Resources << /XObject << /X %d 0 R >> >> " % (number + 1)
        else:
            body = b"0 0 m 1 1 l S\n" * ops
            res = b""
        objects.append(_stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] " + res))
    return pdf_file(objects)
