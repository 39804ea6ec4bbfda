"""distillguard: detect and contain distillation attacks on model APIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distillguard")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
