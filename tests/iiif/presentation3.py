"""The IIIF Presentation 3 rules a transcription manifest must keep, as a JSON Schema
(draft 2020-12) for the `jsonschema` package, written from the specification
(https://iiif.io/api/presentation/3.0/) and the W3C Web Annotation model for the resources
the export makes. Like the IIIF validator's schema, it closes the Manifest and AnnotationPage
to the properties the specification defines, and adds what that schema leaves loose: a
canvas id without a fragment, selectors whose values are well-formed, and TextualBody
values. (iiif-prezi3 would check its own models, but every release pins Pillow<=12, and the
project runs Pillow 13.)"""

HTTP = {"type": "string", "pattern": "^https?://[^ ]+$"}
LANGUAGE_MAP = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": "^([a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*|none)$"},
    "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
}
PAIR = {
    "type": "object",
    "properties": {"label": LANGUAGE_MAP, "value": LANGUAGE_MAP},
    "required": ["label", "value"],
    "additionalProperties": False,
}
DIMENSION = {"type": "integer", "exclusiveMinimum": 0}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$ref": "#/$defs/manifest",
    "$defs": {
        "manifest": {
            "type": "object",
            "properties": {
                "@context": {"const": "http://iiif.io/api/presentation/3/context.json"},
                "id": HTTP,
                "type": {"const": "Manifest"},
                "label": LANGUAGE_MAP,
                "summary": LANGUAGE_MAP,
                "metadata": {"type": "array", "items": PAIR},
                "requiredStatement": PAIR,
                "rights": {
                    "type": "string",
                    "pattern": "^http://(creativecommons\\.org/(licenses|publicdomain)/"
                    "|rightsstatements\\.org/vocab/)",
                },
                "seeAlso": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": HTTP,
                            "type": {"type": "string"},
                            "label": LANGUAGE_MAP,
                            "format": {"type": "string", "pattern": "^[a-z]+/.+$"},
                            "profile": {"type": "string"},
                        },
                        "required": ["id", "type"],
                    },
                },
                "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/canvas"}},
            },
            "required": ["@context", "id", "type", "label", "items"],
            "additionalProperties": False,
        },
        "canvas": {
            "type": "object",
            "properties": {
                # A canvas id has no fragment: #xywh= on it must name a region.
                "id": {"type": "string", "pattern": "^https?://[^ #]+$"},
                "type": {"const": "Canvas"},
                "label": LANGUAGE_MAP,
                "width": DIMENSION,
                "height": DIMENSION,
                "items": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/paintingPage"},
                    "minItems": 1,
                },
                "annotations": {"type": "array", "items": {"$ref": "#/$defs/linePage"}},
            },
            "required": ["id", "type", "width", "height", "items"],
            "additionalProperties": False,
        },
        "paintingPage": {
            "type": "object",
            "properties": {
                "id": HTTP,
                "type": {"const": "AnnotationPage"},
                "items": {"type": "array", "items": {"$ref": "#/$defs/painting"}},
            },
            "required": ["id", "type", "items"],
            "additionalProperties": False,
        },
        "painting": {
            "type": "object",
            "properties": {
                "id": HTTP,
                "type": {"const": "Annotation"},
                "motivation": {"const": "painting"},
                "body": {"$ref": "#/$defs/image"},
                "target": HTTP,
            },
            "required": ["id", "type", "motivation", "body", "target"],
            "additionalProperties": False,
        },
        "image": {
            "type": "object",
            "properties": {
                "id": HTTP,
                "type": {"const": "Image"},
                "format": {"type": "string", "pattern": "^image/.+$"},
                "width": DIMENSION,
                "height": DIMENSION,
                "service": {"type": "array", "items": {"$ref": "#/$defs/imageService"}},
            },
            "required": ["id", "type"],
            "additionalProperties": False,
        },
        "imageService": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "id": HTTP,
                        "type": {"const": "ImageService3"},
                        "profile": {"enum": ["level0", "level1", "level2"]},
                    },
                    "required": ["id", "type", "profile"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "@id": HTTP,
                        "@type": {"const": "ImageService2"},
                        "profile": {"type": "string"},
                    },
                    "required": ["@id", "@type", "profile"],
                    "additionalProperties": False,
                },
            ]
        },
        "linePage": {
            "type": "object",
            "properties": {
                "id": HTTP,
                "type": {"const": "AnnotationPage"},
                "items": {"type": "array", "items": {"$ref": "#/$defs/line"}},
            },
            "required": ["id", "type", "items"],
            "additionalProperties": False,
        },
        "line": {
            "type": "object",
            "properties": {
                "id": HTTP,
                "type": {"const": "Annotation"},
                "motivation": {"const": "supplementing"},
                "label": LANGUAGE_MAP,
                "body": {
                    "type": "object",
                    "properties": {
                        "type": {"const": "TextualBody"},
                        "value": {"type": "string", "minLength": 1},
                        "format": {"const": "text/plain"},
                        "language": {"type": "string"},
                    },
                    "required": ["type", "value"],
                    "additionalProperties": False,
                },
                "target": {
                    "oneOf": [
                        {"type": "string", "pattern": "^https?://[^ #]+#xywh=\\d+,\\d+,\\d+,\\d+$"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": "SpecificResource"},
                                "source": {
                                    "type": "object",
                                    "properties": {"id": HTTP, "type": {"const": "Canvas"}},
                                    "required": ["id", "type"],
                                    "additionalProperties": False,
                                },
                                "selector": {
                                    "type": "object",
                                    "properties": {
                                        "type": {"const": "SvgSelector"},
                                        "value": {"type": "string", "pattern": "^<svg .*</svg>$"},
                                    },
                                    "required": ["type", "value"],
                                    "additionalProperties": False,
                                },
                            },
                            "required": ["type", "source", "selector"],
                            "additionalProperties": False,
                        },
                    ]
                },
                "ocrreview:status": {"type": "string"},
                "ocrreview:confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "ocrreview:unclear": {"const": True},
                "ocrreview:unclearNote": {"type": "string", "minLength": 1},
            },
            "required": ["id", "type", "motivation", "body", "target"],
            "additionalProperties": False,
        },
    },
}
