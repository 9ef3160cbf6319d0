"""The OpenAPI document's component schemas: Argo's objects, lists and Status."""

from __future__ import annotations

from typing import Any

from analysisd.api.openapi_common import ref


def _object(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string", "example": "argoproj.io/v1alpha1"},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": ref("ObjectMeta"),
            "spec": {"type": "object"},
            **({"status": {"type": "object"}} if kind == "AnalysisRun" else {}),
        },
    }


def component_schemas() -> dict[str, Any]:
    """components.schemas: what the paths' `$ref`s name."""
    return {
        "ObjectMeta": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "generateName": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
            },
        },
        "AnalysisTemplate": _object("AnalysisTemplate"),
        "ClusterAnalysisTemplate": _object("ClusterAnalysisTemplate"),
        "AnalysisRun": _object("AnalysisRun"),
        "RunRequest": {
            "type": "object",
            "required": ["templates"],
            "properties": {
                "metadata": ref("ObjectMeta"),
                "templates": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "templateName": {"type": "string"},
                            "clusterScope": {"type": "boolean"},
                        },
                    },
                },
                "args": {"type": "array", "items": {"type": "object"}},
            },
        },
        "AnalysisRunOrRequest": {"oneOf": [ref("AnalysisRun"), ref("RunRequest")]},
        "ObjectList": {
            "type": "object",
            "required": ["kind", "items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ItemList": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "kind": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Status": {
            "type": "object",
            "required": ["kind", "status", "code", "message"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string", "enum": ["Status"]},
                "status": {"type": "string"},
                "code": {"type": "integer"},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
    }
