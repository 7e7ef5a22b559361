"""The zarr feature cache shared by every stage after extraction."""
from vava.cache.fingerprint import FORMAT_VERSION, feature_set_fingerprint, stable_hash
from vava.cache.inputs import FeatureInputs, FeatureSettings, Sampling
from vava.cache.locks import FileLock, video_lock
from vava.cache.store import CachedVideo, FeatureSet, open_feature_sets, remove_feature_set

__all__ = [
    "FORMAT_VERSION",
    "CachedVideo",
    "FeatureInputs",
    "FeatureSet",
    "FeatureSettings",
    "FileLock",
    "Sampling",
    "feature_set_fingerprint",
    "open_feature_sets",
    "remove_feature_set",
    "stable_hash",
    "video_lock",
]
