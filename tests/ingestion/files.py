"""Real files of every accepted type, and broken ones, made in memory for the tests."""

import io
import itertools
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>{image}</fileName></sourceImageInformation>
  </Description>
  <Layout><Page WIDTH="{width}" HEIGHT="{height}" ID="p1"><PrintSpace>
    <TextBlock ID="b1">
      <TextLine ID="l1" BASELINE="20 60 500 60" HPOS="20" VPOS="20" WIDTH="480" HEIGHT="50">
        <Shape><Polygon POINTS="20 20 500 20 500 70 20 70"/></Shape>
        <String CONTENT="Dear Sir," HPOS="20" VPOS="20" WIDTH="480" HEIGHT="50"/>
      </TextLine>
      <TextLine ID="l2" BASELINE="20 160 500 160" HPOS="20" VPOS="120" WIDTH="480" HEIGHT="50">
        <Shape><Polygon POINTS="20 120 500 120 500 170 20 170"/></Shape>
        <String CONTENT="your letter of the 3rd" HPOS="20" VPOS="120" WIDTH="480" HEIGHT="50"/>
      </TextLine>
    </TextBlock>
  </PrintSpace></Page></Layout>
</alto>
"""

PAGE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">
  <Page imageFilename="{image}" imageWidth="{width}" imageHeight="{height}">
    <TextRegion id="r1"><Coords points="0,0 600,0 600,400 0,400"/>
      <TextLine id="l1"><Coords points="20,20 500,20 500,70 20,70"/>
        <Baseline points="20,60 500,60"/>
        <TextEquiv><Unicode>First line</Unicode></TextEquiv>
      </TextLine>
    </TextRegion>
  </Page>
</PcGts>
"""


_scans = itertools.count(1)


def page_image(width: int = 600, height: int = 400, text: str | None = None) -> Image.Image:
    """A page; by default each one a scan of its own, since the same file is not ingested
    twice into a collection."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((30, 40), text or f"Dear Sir, {next(_scans)}", fill="black")
    return image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(width: int = 600, height: int = 400) -> bytes:
    return encode(page_image(width, height), "JPEG")


def png(width: int = 600, height: int = 400) -> bytes:
    return encode(page_image(width, height), "PNG")


def tiff(pages: int = 3) -> bytes:
    frames = [page_image() for _ in range(pages)]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def pdf(pages: int = 2) -> bytes:
    frames = [page_image() for _ in range(pages)]
    return encode(frames[0], "PDF", save_all=True, append_images=frames[1:], resolution=100)


def pdf_of_sizes(sizes: list[tuple[float, float]]) -> bytes:
    """Blank pages of these sizes in points."""
    document = pdfium.PdfDocument.new()
    for width, height in sizes:
        document.new_page(width, height)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes], **options) -> bytes:
    buffer = io.BytesIO()
    options = {"compression": zipfile.ZIP_DEFLATED, **options}
    with zipfile.ZipFile(buffer, "w", **options) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_without_utf8_flag(entries: dict[str, bytes]) -> bytes:
    """A ZIP whose names are UTF-8 without the flag saying so, as Linux's and macOS's zip
    tools write them."""
    data = bytearray(zip_of(entries))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = 0
        while (position := data.find(signature, position)) != -1:
            flags = struct.unpack("<H", data[position + flags_at : position + flags_at + 2])[0]
            data[position + flags_at : position + flags_at + 2] = struct.pack("<H", flags & ~0x800)
            position += 4
    return bytes(data)


def zip_with_unreadable_entries(
    good: dict[str, bytes], unreadable: tuple[str, ...] = ("corrupt.png", "locked.png")
) -> bytes:
    """`good`, plus `corrupt.png`, whose deflate stream is damaged, and `locked.png`, marked
    encrypted: zipfile fails on them with zlib.error and RuntimeError, not BadZipFile."""
    data = bytearray(zip_of({**good, **{name: png() for name in unreadable}}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        infos = {name: archive.getinfo(name) for name in unreadable}
    if "corrupt.png" in infos:
        start = infos["corrupt.png"].header_offset + 30 + len("corrupt.png")
        data[start + 10 : start + 50] = bytes(b ^ 0xFF for b in data[start + 10 : start + 50])
    if "locked.png" in infos:
        data[infos["locked.png"].header_offset + 6] |= 0x01  # the encryption bit, local header
        position = 0
        while (position := data.find(b"PK\x01\x02", position)) != -1:
            name_length = struct.unpack("<H", data[position + 28 : position + 30])[0]
            if data[position + 46 : position + 46 + name_length] == b"locked.png":
                data[position + 8] |= 0x01  # and in the central directory
            position += 4
    return bytes(data)


def alto(image: str, width: int = 600, height: int = 400) -> bytes:
    return ALTO.format(image=image, width=width, height=height).encode()


def page_xml(image: str, width: int = 600, height: int = 400) -> bytes:
    return PAGE_XML.format(image=image, width=width, height=height).encode()


def zip_with_entries_zipfile_chokes_on(good: dict[str, bytes]) -> bytes:
    """`good`, plus `damaged.png`, LZMA-compressed with its stream damaged (zipfile raises
    lzma.LZMAError), an entry named `.`, and one named by a NUL byte, which zipfile reads as
    an empty name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in good.items():
            archive.writestr(name, data)
        archive.writestr("damaged.png", png(), compress_type=zipfile.ZIP_LZMA)
        archive.writestr(".", b"dot")
        archive.writestr("@", b"nul")
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        damaged, nul = archive.getinfo("damaged.png"), archive.getinfo("@")
    start = damaged.header_offset + 30 + len("damaged.png")
    data[start + 20 : start + 60] = bytes(b ^ 0xFF for b in data[start + 20 : start + 60])
    data[nul.header_offset + 30] = 0  # the name in the local header
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) != -1:
        name_length = struct.unpack("<H", data[position + 28 : position + 30])[0]
        if data[position + 46 : position + 46 + name_length] == b"@":
            data[position + 46] = 0  # and in the central directory
        position += 4
    return bytes(data)


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A PNG header claiming 1.6 gigapixels: a few hundred bytes that would decode to
    gigabytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def encrypted_pdf() -> bytes:
    """A PDF under the standard security handler whose user password is not empty."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <"
        + b"11" * 32
        + b"> /U <"
        + b"22" * 32
        + b"> /P -4 >>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + content + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        body += f"{offset:010d} 00000 n \n".encode()
    body += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Encrypt 4 0 R "
        f"/ID [<{'ab' * 16}> <{'ab' * 16}>] >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return body


def noise_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG that does not compress (random pixels): a large scan's size in few lines."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    return encode(Image.frombytes("RGB", (width, height), pixels), "PNG", compress_level=1)


def zip_file(path: Path, entries: Iterable[tuple[str, Callable[[], bytes]]]) -> int:
    """A ZIP written to disk an entry at a time, stored (scans do not compress); returns the
    sum of its entries' sizes."""
    total = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, make in entries:
            data = make()
            total += len(data)
            archive.writestr(name, data)
    return total


def zip_with_central_directory_patched(entries: dict[str, bytes], patch: str) -> bytes:
    """A ZIP whose first central directory record zipfile refuses when it opens the archive:
    `version` needs a format version above the 6.3 it knows, `utf8-name` says its name is
    UTF-8 and holds a byte that UTF-8 has not."""
    data = bytearray(zip_of(entries))
    record = data.find(b"PK\x01\x02")
    if patch == "version":
        data[record + 6 : record + 8] = struct.pack("<H", 64)
    elif patch == "utf8-name":
        flags = struct.unpack("<H", data[record + 8 : record + 10])[0]
        data[record + 8 : record + 10] = struct.pack("<H", flags | 0x800)
        data[record + 46] = 0xFF
    else:
        raise ValueError(patch)
    return bytes(data)
