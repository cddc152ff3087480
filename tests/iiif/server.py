"""A real IIIF server for the tests: http.server in a thread on 127.0.0.1 (a free port),
serving Presentation manifests (versions 2 and 3), Image API info.json and images made with
Pillow, and the hostile answers the import must survive. Each route is a function that
writes the answer; `hits` counts the requests of each path."""

import contextlib
import http.server
import json
import threading
import time
from collections import Counter
from collections.abc import Callable

from tests.ingestion import files

P2 = "http://iiif.io/api/presentation/2/context.json"
P3 = "http://iiif.io/api/presentation/3/context.json"


class Handler(http.server.BaseHTTPRequestHandler):
    server: "IiifServer"

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.server.hits[path] += 1
        route = self.server.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        # The client may give up, as a capped or timed-out fetch does.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)

    def log_message(self, *args) -> None:
        pass


class IiifServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Callable[[Handler], None]] = {}
        self.hits: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, path: str, body: bytes | str | dict | list, content_type: str = "") -> str:
        if isinstance(body, dict | list):
            body, content_type = json.dumps(body).encode(), content_type or "application/ld+json"
        elif isinstance(body, str):
            body = body.encode()
        self.routes[path] = lambda handler: send(handler, body, content_type or "image/jpeg")
        return self.url(path)

    def image(self, path: str, width: int, height: int, text: str = "Dear Sir") -> str:
        return self.serve(path, files.encode(files.page_image(width, height, text), "JPEG"))

    def image_service(self, name: str, width: int, height: int, version: int = 3) -> str:
        """An Image API service at /iiif/<name>: its info.json and the full image, at the
        sizes the import asks for."""
        service = self.url(f"/iiif/{name}")
        if version == 3:
            info = {
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": service,
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": "level1",
                "width": width,
                "height": height,
            }
            size = "max"
        else:
            info = {
                "@context": "http://iiif.io/api/image/2/context.json",
                "@id": service,
                "protocol": "http://iiif.io/api/image",
                "profile": ["http://iiif.io/api/image/2/level1.json"],
                "width": width,
                "height": height,
            }
            size = "full"
        self.serve(f"/iiif/{name}/info.json", info)
        self.image(f"/iiif/{name}/full/{size}/0/default.jpg", width, height, name)
        return service


def send(handler: Handler, body: bytes, content_type: str, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str) -> Callable[[Handler], None]:
    def route(handler: Handler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def slow(seconds: float) -> Callable[[Handler], None]:
    def route(handler: Handler) -> None:
        time.sleep(seconds)
        send(handler, b"{}", "application/json")

    return route


def endless(handler: Handler) -> None:
    """A body without Content-Length that never ends: only a byte cap stops the reader."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    chunk = b" " * 65536
    for _ in range(100_000):
        handler.wfile.write(chunk)


def manifest_3(
    server: IiifServer,
    path: str,
    canvases: list[tuple[str, int, int, str]],
    title: str = "Letters of Rebecca Lathrop",
) -> str:
    """A version 3 manifest at `path`: canvases (label, width, height, Image API service)."""
    url = server.url(path)
    items = []
    for n, (label, width, height, service) in enumerate(canvases, 1):
        canvas = f"{url}/canvas/{n}"
        items.append(
            {
                "id": canvas,
                "type": "Canvas",
                "label": {"en": [label]},
                "width": width,
                "height": height,
                "items": [
                    {
                        "id": f"{canvas}/page",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{canvas}/page/image",
                                "type": "Annotation",
                                "motivation": "painting",
                                "target": canvas,
                                "body": {
                                    "id": f"{service}/full/max/0/default.jpg",
                                    "type": "Image",
                                    "format": "image/jpeg",
                                    "width": width,
                                    "height": height,
                                    "service": [
                                        {
                                            "id": service,
                                            "type": "ImageService3",
                                            "profile": "level1",
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            }
        )
    return server.serve(
        path,
        {
            "@context": P3,
            "id": url,
            "type": "Manifest",
            "label": {"en": [title]},
            "summary": {"en": ["Two letters"]},
            "metadata": [
                {"label": {"en": ["Date"]}, "value": {"none": ["1862"]}},
                {"label": {"en": ["Shelfmark"]}, "value": {"none": ["SC0033 B1 F14"]}},
            ],
            "requiredStatement": {
                "label": {"en": ["Attribution"]},
                "value": {"en": ["Stanford Libraries"]},
            },
            "rights": "http://creativecommons.org/publicdomain/mark/1.0/",
            "items": items,
        },
    )


def manifest_2(server: IiifServer, path: str, canvases: list[tuple[str, int, int, str]]) -> str:
    """A version 2 manifest at `path`: canvases (label, width, height, image URL or service)."""
    url = server.url(path)
    items = []
    for n, (label, width, height, image) in enumerate(canvases, 1):
        resource = {"@id": image, "@type": "dctypes:Image", "format": "image/jpeg"}
        if "/iiif/" in image:
            resource = {
                "@id": f"{image}/full/full/0/default.jpg",
                "@type": "dctypes:Image",
                "service": {
                    "@context": "http://iiif.io/api/image/2/context.json",
                    "@id": image,
                    "profile": "http://iiif.io/api/image/2/level1.json",
                },
            }
        items.append(
            {
                "@id": f"{url}/canvas/{n}",
                "@type": "sc:Canvas",
                "label": label,
                "width": width,
                "height": height,
                "images": [
                    {
                        "@type": "oa:Annotation",
                        "motivation": "sc:painting",
                        "on": f"{url}/canvas/{n}",
                        "resource": resource,
                    }
                ],
            }
        )
    return server.serve(
        path,
        {
            "@context": P2,
            "@id": url,
            "@type": "sc:Manifest",
            "label": "Ledger of the Lathrop farm",
            "description": [{"@value": "Accounts, 1870", "@language": "en"}],
            "metadata": [{"label": "Date", "value": "1870"}],
            "attribution": "Stanford Libraries",
            "license": "http://creativecommons.org/licenses/by/4.0/",
            "sequences": [{"@type": "sc:Sequence", "canvases": items}],
        },
    )
