"""Controller-side helpers for model weights: generated model directories and their manifests."""

from sglfleet.weights.generate import generate_model_dir, hub_tree_entry
from sglfleet.weights.manifest import MANIFEST_NAME, MARKER_NAME, ManifestFile, read_manifest

__all__ = [
    "MANIFEST_NAME",
    "MARKER_NAME",
    "ManifestFile",
    "generate_model_dir",
    "hub_tree_entry",
    "read_manifest",
]
